#!/usr/bin/env python3
# Per-layer table for bench/conv_layers.sh: piqc's convolution times (PIQC_ONEDNN_CONV_TIME traces)
# against onnxruntime's per-node profile (Conv / FusedConv / QuickGelu nodes), grouped per block.
# Usage: conv_layers.py --piqc TRACE... --ort PROFILE.json... [--skip N]
#   Within one trace / profile: the median per node over its runs (the first --skip, default 3,
#   dropped: warm-up, primitive creation);
#   across rounds: the minimum of those medians. Nodes are grouped by block (torchvision names:
#   .../block.K, /layerL/layerL.K, /features/features.N), since onnxruntime fuses and renames
#   nodes (a residual Add and the activation go into its Conv; SiLU becomes QuickGelu, counted
#   here as part of the block as piqc fuses it into the convolution).
import argparse
import collections
import json
import re
import sys

ORT_OPS = ('Conv', 'FusedConv', 'QuickGelu')
BLOCK = re.compile(r'(.*?/block\.\d+|/layer\d/layer\d\.\d+|/features/features\.\d+|/conv1|/relu)')


def block_of(name):
    m = BLOCK.match(name)
    if not m:
        return name.rsplit('/', 1)[0]
    return '/conv1' if m.group(1) == '/relu' else m.group(1)  # resnet's stem: Conv+Relu fused


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else 0.0


def conv_class(sh):
    """Class of one piqc convolution from its trace shape 'n1 c16 m64 g1 in112 k1 s1'."""
    f = dict((m.group(1), int(m.group(2))) for m in re.finditer(r'([a-z]+)(-?\d+)', sh))
    c, m, g, k, s, sp = f.get('c'), f.get('m'), f.get('g'), f.get('k'), f.get('s'), f.get('in')
    if c is not None and c <= 4:
        return 'stem %dx%d' % (k, k)
    if g is not None and g > 1 and g == c:
        return 'depthwise %dx%d s%d' % (k, k, s)
    if k == 1 and sp == 1:
        return '1x1 on 1x1 (squeeze-excite)'
    if k == 1:
        return '1x1 at %dx%d' % (sp, sp) if sp <= 14 else '1x1 at >= 28x28'
    return '%dx%d dense' % (k, k)


def load_piqc(path, skip):
    t = collections.defaultdict(list)
    shapes = {}
    for line in open(path):
        if not line.startswith('piqc_conv,'):
            continue
        _, name, sh, st, us = line.rstrip('\n').split(',')
        t[name].append(float(us))
        shapes[name] = sh + ('' if st == '0' else ' (reference kernel)')
    return {n: median(v[skip:]) for n, v in t.items()}, shapes


def load_ort(path, skip):
    t = collections.defaultdict(list)
    for e in json.load(open(path)):
        if e.get('cat') != 'Node' or not e.get('name', '').endswith('_kernel_time'):
            continue
        if e.get('args', {}).get('op_name') in ORT_OPS:
            t[e['name']].append(float(e['dur']))
    return {n: median(v[skip:]) for n, v in t.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--piqc', nargs='+', required=True)
    ap.add_argument('--ort', nargs='+', required=True)
    ap.add_argument('--skip', type=int, default=3)
    o = ap.parse_args()
    pr = [load_piqc(p, o.skip) for p in o.piqc]
    orr = [load_ort(p, o.skip) for p in o.ort]
    shapes = pr[0][1]
    pmin = {n: min(r[0].get(n, float('inf')) for r in pr) for n in pr[0][0]}
    omin = {n: min(r.get(n, float('inf')) for r in orr) for n in orr[0]}
    blocks = collections.OrderedDict()
    for n in pmin:
        blocks.setdefault(block_of(n), [[], []])[0].append(n)
    for n in omin:
        blocks.setdefault(block_of(n), [[], []])[1].append(n)
    cls = collections.OrderedDict()
    print('%9s %9s %6s  %-44s %s' % ('piqc us', 'ort us', 'ratio', 'block', 'piqc convolutions'))
    tp = to = 0.0
    for b, (pn, on) in blocks.items():
        p = sum(pmin[n] for n in pn)
        q = sum(omin[n] for n in on)
        tp += p
        to += q
        kinds = sorted(set(conv_class(shapes[n]) for n in pn))
        k = kinds[0] if len(kinds) == 1 else 'mixed'
        c = cls.setdefault(k, [0.0, 0.0, 0])
        c[0] += p
        c[1] += q
        c[2] += 1
        ratio = '%6.2f' % (p / q) if q > 0 else '     -'
        print('%9.1f %9.1f %s  %-44s %s' % (p, q, ratio, b, ' | '.join(shapes[n] for n in pn)))
    print('\nper class of block (blocks whose piqc convolutions are all of one class):')
    for k, (p, q, nb) in sorted(cls.items(), key=lambda kv: -kv[1][0]):
        ratio = '%5.2f' % (p / q) if q > 0 else '    -'
        print('  %-30s %3d blocks  piqc %8.1f us  ort %8.1f us  ratio %s' % (k, nb, p, q, ratio))
    print('total: piqc %.1f us, onnxruntime %.1f us, ratio %.2f' % (tp, to, tp / to if to else 0))
    return 0


if __name__ == '__main__':
    sys.exit(main())
