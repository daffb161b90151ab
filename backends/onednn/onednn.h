/* oneDNN (2.6, C API) fast kernels for f32 Conv, MatMul and Gemm, registered in the "onednn"
 * section of backends/fast_table.c. Each follows backends/fast.h: PQ_ERR_UNSUPPORTED, with outputs
 * and err untouched, for every case it does not handle (then the reference kernel runs). */
#ifndef PQ_ONEDNN_H
#define PQ_ONEDNN_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/ref/ref.h"

/* Conv (1-D/2-D/3-D spatial) with f32 X, W, optional B and f32 Y: groups (depthwise included),
 * strides, dilations, explicit pads and auto_pad (NOTSET, VALID, SAME_UPPER, SAME_LOWER).
 * UNSUPPORTED for other dtypes, empty tensors, negative pads, a missing output buffer, or when
 * oneDNN is unavailable or rejects the shape. Returns NOMEM (message set) when a scratch buffer
 * cannot be allocated and INTERNAL (message set) when oneDNN fails during execution. Weights
 * reordered into oneDNN's preferred layout are cached (validated against a copy of the original
 * weights on every call, so a weight tensor changed in place or freed and reallocated at the same
 * address is never served stale). */
enum pq_status pq_onednn_conv(const pq_kernel_args *a);

/* MatMul (numpy semantics) with f32 A, B, Y: 1-D operands, batch dims broadcast between A and
 * B (ranks up to 8). UNSUPPORTED/NOMEM/INTERNAL as for pq_onednn_conv. */
enum pq_status pq_onednn_matmul(const pq_kernel_args *a);

/* Gemm Y = alpha * op(A) op(B) + beta * C with f32 2-D A and B, transA/transB, optional f32 C
 * unidirectionally broadcastable to [M, N] (scalar, [N], [1, N], [M, 1], [1, 1], [M, N]); C is
 * not read when beta == 0 (as in the reference kernel).
 * UNSUPPORTED/NOMEM/INTERNAL as for pq_onednn_conv. */
enum pq_status pq_onednn_gemm(const pq_kernel_args *a);

/* Fused activation (node attribute activation, ir/infer_piqc.h): all three kernels run it as
 * oneDNN eltwise post-ops inside the primitive (before the destination reorder, in the blocked
 * layout, on the primitive's threads): Relu, LeakyRelu (relu with slope) and Clip give exactly the
 * reference values; Sigmoid (logistic), Tanh, Gelu (gelu_erf), Swish, HardSwish and HardSigmoid
 * (linear, then clip to [0, 1]) use oneDNN's f32 arithmetic and approximations and are within
 * |y - y_ref| <= PQ_ONEDNN_ACT_RTOL |y_ref| + PQ_ONEDNN_ACT_ATOL of the separate op's reference
 * kernel applied to the oneDNN result (tests/backends/test_fused_act.c). The environment variable
 * PIQC_ONEDNN_ACT=ref (read at first use) runs the primitive without post-ops and applies the
 * reference epilogue (pq_act_epilogue) to the output instead: bit-identical to the separate op.
 * Exception: on AVX-512 the convolution runs Swish and HardSwish as piqc's own pass over its
 * destination right after the primitive (backends/eltwise_fast.h's swish / hard_swish kernels,
 * faster than oneDNN's post-ops, same bound); PIQC_ONEDNN_ACT_PASS=0 (read at first use) makes
 * them post-ops again. */
#define PQ_ONEDNN_ACT_RTOL 4e-6
#define PQ_ONEDNN_ACT_ATOL 1e-6

/* Activation layout of the oneDNN convolution. BLOCKED (default) lets oneDNN choose a blocked
 * layout (nChw8c on AVX2) and reorders X into it and Y out of it on every call; PLAIN runs on
 * NC[D]HW directly (oneDNN then uses im2col + GEMM). The environment variable
 * PIQC_ONEDNN_CONV=plain selects PLAIN at first use; this call overrides it (tests, benchmarks). */
enum pq_onednn_conv_layout { PQ_ONEDNN_CONV_PLAIN = 0, PQ_ONEDNN_CONV_BLOCKED = 1 };
void pq_onednn_conv_set_layout(enum pq_onednn_conv_layout mode);

/* Whether 3x3 stride-1 convolutions with >= 64 input and output channels use oneDNN's Winograd
 * algorithm where it has one (AVX-512; ~20-40% faster on resnet18's layers, results within a few
 * ulps of the direct algorithm's). Default on; the environment variable PIQC_ONEDNN_WINOGRAD=0
 * turns it off at first use; this call overrides it (tests, benchmarks). With the PLAIN layout
 * the direct algorithm always runs. */
void pq_onednn_conv_set_winograd(bool on);

/* Problems smaller than this many multiply-adds (batch included) are declined (UNSUPPORTED) by
 * all three kernels: a oneDNN call costs about 1.5 us of fixed overhead (memory objects, execution
 * context), more than the reference kernel needs for them (8x8x8 MatMul: ref 0.3 us, oneDNN 1.6
 * us). Default PQ_ONEDNN_MIN_MACS; tests set 0 to check tiny shapes numerically. */
#define PQ_ONEDNN_MIN_MACS 4096
void pq_onednn_set_min_macs(int64_t macs);

/* Threads: oneDNN here is built on OpenMP; every kernel sets omp_set_num_threads(t) (per calling
 * thread) before creating or running a primitive, and t is part of the cache key, where
 * t = min(n_threads, macs / macs_per_thread), at least 1 (pq_dnnl_threads_for), and
 * macs_per_thread = pq_onednn_macs_per_thread(): PQ_ONEDNN_MACS_PER_THREAD when libgomp's workers
 * spin between parallel regions (then t is also capped by pq_threads_usable(n_threads),
 * backends/threadpool.h: on CPUs other processes keep busy a region waits a time slice for a
 * thread and the spinning spends this process's share; 2 busy cores: 2 threads up to 2x slower
 * than 1 without the cap, about the same as 1 with it), and spin between
 * parallel regions (the default; GOMP_SPINCOUNT >= PQ_ONEDNN_SPIN_MIN), so that a fork/join costs
 * about a microsecond and a 2-thread convolution of 128K multiply-adds already gains (2 idle
 * Sapphire Rapids cores: MobileNetV3-Large at 2 threads 3.7-3.9 ms with 64K, 5.5 ms with 1M, 6.3 ms
 * with 4M, 6.7 ms at 1 thread); PQ_ONEDNN_MACS_PER_THREAD_PASSIVE when they sleep at once
 * (OMP_WAIT_POLICY=passive or a smaller GOMP_SPINCOUNT), where every fork is a futex wake of
 * 35-80 us on this kind of VM and only big convolutions pay for it. */
#define PQ_ONEDNN_MACS_PER_THREAD ((int64_t)1 << 16)
#define PQ_ONEDNN_MACS_PER_THREAD_PASSIVE ((int64_t)1 << 22)
#define PQ_ONEDNN_SPIN_MIN 1000
/* The per-thread minimum for libgomp's environment as libgomp read it at load time:
 * pq_onednn_macs_per_thread_for(getenv("OMP_WAIT_POLICY"), getenv("GOMP_SPINCOUNT")), read once. */
int64_t pq_onednn_macs_per_thread(void);
/* The rule: libgomp's spin count is GOMP_SPINCOUNT when it parses (a number with an optional k,
 * M, G or T suffix, or "infinite"/"infinity"), otherwise 0 for OMP_WAIT_POLICY=passive, "infinite"
 * for active and 300000 when unset; below PQ_ONEDNN_SPIN_MIN gives
 * PQ_ONEDNN_MACS_PER_THREAD_PASSIVE, otherwise PQ_ONEDNN_MACS_PER_THREAD. NULL: not set. */
int64_t pq_onednn_macs_per_thread_for(const char *wait_policy, const char *spincount);
/* piqc's own passes over oneDNN-layout copies (per-channel Mul, Add, GlobalAveragePool on kept
 * copies) split across the pool from PQ_ONEDNN_LAYOUT_PAR_MIN elements, from
 * PQ_ONEDNN_LAYOUT_PAR_MIN_IDLE while the CPUs are idle (pq_threads_usable). The convolution
 * before such a pass usually ran on all the threads, so its output sits in every core's cache:
 * one thread reading it all is slower than the split even for small copies (mobilenet_v3_large
 * batch 1, two threads: the GlobalAveragePools 0.113 -> 0.060 ms per run with 16K). */
#define PQ_ONEDNN_LAYOUT_PAR_MIN ((int64_t)1 << 17)
#define PQ_ONEDNN_LAYOUT_PAR_MIN_IDLE ((int64_t)1 << 14)
/*
 * Wait policy: leave OMP_WAIT_POLICY unset (libgomp spins 300000 pauses, ~7 ms, after a parallel
 * region) or bound the spin with GOMP_SPINCOUNT=10000 (~0.25 ms; bench/bench_fp32_cnn.sh does).
 * On busy cores the spinning used to make 2 threads many times slower than 1 (digits batch 360
 * on 2 loaded cores: 24 ms at 1 thread, 177 ms at 2); on busy CPUs piqc now runs oneDNN on one
 * thread then (the cap above), so nothing spins. OMP_WAIT_POLICY=passive stays safe without the
 * cap (sleeping workers; with the scheduler's per-session groups, 2 threads on 2 shared cores get
 * about twice the CPU share of one, so big calls still gain there), but then only the largest
 * convolutions are threaded, on idle CPUs too. */

/* True when the oneDNN CPU engine and stream could be created (created on first call, once,
 * thread-safe). When false every kernel above returns UNSUPPORTED. */
bool pq_onednn_available(void);

/* Drops every cached primitive and reordered weight not in use right now (tests, shutdown). */
void pq_onednn_cache_clear(void);

/* Per-session cache. Without one, the kernels above use process-wide LRU caches keyed by shape
 * (primitives) and by shape + weight address, validated by comparing the whole weight tensor
 * with a copy on every call. A pq_onednn_cache instead keeps, per graph node (the node pointer),
 * the primitive, its layouts and the weights reordered into the primitive's layout (Conv weights,
 * and constant 2-D MatMul / Gemm B, which oneDNN then reads packed, e.g. BA16a64b), built on the
 * node's first run and reused while the node's shapes, attributes and thread count stay the same
 * (otherwise rebuilt), plus work buffers shared by all nodes (blocked activations, scratchpad).
 * Reordered weights are kept only for weights that are graph constants; they are identified by
 * data address, byte size and 8 sampled 8-byte words, checked on every call: a constant replaced
 * by another tensor (new address or size) is re-reordered, but an in-place change of a constant's
 * data that leaves the sampled words alone is NOT noticed -- destroy the cache (the session) after
 * editing weights in place. Weights that are not constants are reordered on every call.
 * Ownership: the creator (runtime/session.c: one per pq_session, created in pq_session_create,
 * destroyed in pq_session_destroy) owns it and everything in it. Not thread-safe: one cache is
 * used by one thread at a time (sessions are single-threaded); distinct caches may be used by
 * distinct threads concurrently. */
typedef struct pq_onednn_cache pq_onednn_cache;
/* Returns a new empty cache, or NULL when out of memory. */
pq_onednn_cache *pq_onednn_cache_create(void);
/* Frees every primitive, buffer and weight copy of c (NULL allowed); unbinds c if bound. */
void pq_onednn_cache_destroy(pq_onednn_cache *c);
/* Makes c (NULL: none) the cache the kernels above use when called from this thread; returns the
 * previously bound cache so nested callers can restore it. */
pq_onednn_cache *pq_onednn_cache_bind(pq_onednn_cache *c);
/* Starts a top-level run of the cache bound to this thread (none: nothing happens).
 * plain_optional: nothing but the kernels reads activations this run (no observer), so a
 * convolution whose every reader is a oneDNN convolution taking its blocked output may leave the
 * plain tensor unwritten (runtime/exec.c passes "no observe callback"). Blocked outputs are kept
 * for the next convolution either way; PIQC_ONEDNN_LAYOUT=reorder (read once) turns both off.
 * The previous run's kept copies are released (their buffers stay for this run's). */
void pq_onednn_run_begin(bool plain_optional);

/* GlobalAveragePool, Mul by a per-channel scale [N|1, C, 1, 1], same-shape Add (with its fused
 * activation) and 2-D MaxPool (no Indices output, auto_pad NOTSET; oneDNN's pooling) on the kept
 * blocked copies of convolution outputs (nChw16c, nChw8c, NHWC), bit-identical to the plain
 * kernels (MaxPool: for inputs without NaN); the result of a Mul / Add / MaxPool is kept the same
 * way for its readers. PQ_ERR_UNSUPPORTED (after writing back any plain input that was elided) when
 * the inputs are not such copies; NOMEM / INTERNAL otherwise. Called by the fast-table entries of
 * these ops (backends/eltwise_fast.c) before the plain kernels. */
enum pq_status pq_onednn_eltwise_blocked(const pq_kernel_args *a);

/* Since start: convolution sources taken from a kept blocked copy (no reorder) and plain outputs
 * not written (tests, benchmarks). Either pointer may be NULL. */
void pq_onednn_layout_stats(unsigned long *reused, unsigned long *elided);

/* Number of nodes with an entry in c (tests). */
size_t pq_onednn_cache_entries(const pq_onednn_cache *c);
/* Bytes of c's buffers for kept blocked activations (tests): an entry is reused by a later output
 * of the same run once every reader of its value took it, so the pool holds about the largest set
 * of copies alive at one time, not one buffer per value. */
size_t pq_onednn_cache_blocked_bytes(const pq_onednn_cache *c);

/* Number of primitive-cache hits and misses (creations) of all three kernels since start, for
 * tests that check that repeated runs reuse primitives. Either pointer may be NULL. */
void pq_onednn_cache_stats(unsigned long *hits, unsigned long *misses);

/* Makes pq_parallel_for run its jobs on oneDNN's OpenMP team while libgomp's workers spin
 * between regions (pq_onednn_macs_per_thread() below PQ_ONEDNN_MACS_PER_THREAD_PASSIVE) and
 * pq_threads_usable grants every thread asked for; otherwise piqc's own pool runs them
 * (onednn_parallel.c). Under the same two conditions, once per process and team size, pins the
 * team's workers of an n_threads team (not the caller) to the CPUs after the caller's
 * (PIQC_PIN_THREADS=0: never). Sessions with more than one thread call it. */
void pq_onednn_parallel_install(int n_threads);
/* Tests: 1 always the OpenMP team, 0 never, -1 (default) decide as above. Not thread-safe. */
void pq_onednn_parallel_force(int mode);

#endif
