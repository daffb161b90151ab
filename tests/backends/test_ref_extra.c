/* Tests of the reference kernels of the further ONNX ops (ref_extra_*.c) and their inference
 * rules: expected values were computed independently with numpy / torch (np.einsum, np.unique,
 * np.linalg.det, F.grid_sample, F.nll_loss, F.cross_entropy, F.max_unpool2d, ...) and pasted. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backends/ref/ref.h"

/* ---- test harness: one node in a fresh graph, tensors from double literals ---- */

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define V(...) ((const double[]){__VA_ARGS__})

static pq_graph *g;
static uint32_t nid;
static pq_error err;

static void fini(void) {
    pq_graph_destroy(g);
    g = NULL;
}
TestSuite(ref_extra, .fini = fini);

static void mk_node(enum pq_op op, uint32_t nin, uint32_t nout) {
    uint32_t ins[16], outs[16];
    cr_assert(nin <= 16 && nout <= 16);
    pq_graph_destroy(g);
    g = pq_graph_create(NULL, &err);
    cr_assert_not_null(g);
    for (uint32_t i = 0; i < nin; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &ins[i], &err), PQ_OK);
    for (uint32_t i = 0; i < nout; i++)
        cr_assert_eq(pq_graph_add_value(g, NULL, PQ_DTYPE_UNDEFINED, NULL, &outs[i], &err), PQ_OK);
    cr_assert_eq(pq_graph_add_node(g, op, "n", ins, nin, outs, nout, &nid, &err), PQ_OK);
}

static void set_int(const char *name, int64_t v) {
    cr_assert_eq(pq_node_set_int(g, nid, name, v, &err), PQ_OK);
}
static void set_ints(const char *name, const int64_t *v, uint32_t n) {
    cr_assert_eq(pq_node_set_ints(g, nid, name, v, n, &err), PQ_OK);
}
static void set_str(const char *name, const char *v) {
    cr_assert_eq(pq_node_set_string(g, nid, name, v, &err), PQ_OK);
}
static void set_float(const char *name, float v) {
    cr_assert_eq(pq_node_set_float(g, nid, name, v, &err), PQ_OK);
}

/* Tensor of dtype dt with values v (NULL: 0, 1, 2, ...). */
static pq_tensor *T(enum pq_dtype dt, int rank, const int64_t *dims, const double *v) {
    pq_tensor *t = pq_tensor_create(dt, rank, dims, &err);
    cr_assert_not_null(t);
    int64_t n = pq_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pq_dtype_store(dt, t->data, (size_t)i, v ? v[i] : (double)i);
    return t;
}

/* Output shell with no data: the kernel allocates it. */
static pq_tensor *shell(void) {
    pq_tensor *t = pq_calloc(1, sizeof *t);
    cr_assert_not_null(t);
    return t;
}

static enum pq_status run(pq_tensor **in, uint32_t nin, pq_tensor **out, uint32_t nout) {
    pq_kernel_args a = {g,   &g->nodes[nid], (const pq_tensor *const *)in, nin, out, nout, NULL, 1,
                        &err};
    return pq_ref_run(&a);
}

static void expect(const pq_tensor *t, enum pq_dtype dt, int rank, const int64_t *dims,
                   const double *v, double tol) {
    cr_assert_eq(t->dtype, dt, "dtype %s, expected %s", pq_dtype_name(t->dtype), pq_dtype_name(dt));
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(t->dims[i], dims[i], "dim %d: %lld, expected %lld", i, (long long)t->dims[i],
                     (long long)dims[i]);
    int64_t n = pq_tensor_numel(t);
    if (n) cr_assert_not_null(t->data);
    for (int64_t i = 0; i < n; i++) {
        double got = pq_dtype_load(dt, t->data, (size_t)i);
        double tl = tol * (1.0 + fabs(v[i]));
        cr_assert(fabs(got - v[i]) <= tl, "element %lld: %.9g, expected %.9g", (long long)i, got,
                  v[i]);
    }
}

static void free_all(pq_tensor **t, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        pq_tensor_destroy(t[i]);
}

/* Runs the node on inputs in (consumed) and checks its single output. */
static void run1(pq_tensor **in, uint32_t nin, enum pq_dtype dt, int rank, const int64_t *dims,
                 const double *v, double tol) {
    pq_tensor *o = shell();
    cr_assert_eq(run(in, nin, &o, 1), PQ_OK, "%s", err.msg);
    expect(o, dt, rank, dims, v, tol);
    pq_tensor_destroy(o);
    free_all(in, nin);
}

/* Runs the node and expects status st (inputs consumed). */
static void run_fail(pq_tensor **in, uint32_t nin, enum pq_status st) {
    pq_tensor *o = shell();
    enum pq_status got = run(in, nin, &o, 1);
    cr_assert_eq(got, st, "status %d, expected %d (%s)", got, st, err.msg);
    cr_assert(strlen(err.msg) > 0);
    pq_tensor_destroy(o);
    free_all(in, nin);
}
/* ---- end harness ---- */

/* ---- expected values (numpy / torch, see the file comment) ---- */
/* u_tan: shape [5] */ static const double u_tan[] = {-1.2601581811904907, -0.30933627486228943, 0,
                                                      0.4227932393550873, 1.0296385288238525};
/* u_sinh: shape [5] */ static const double u_sinh[] = {-1.0265166759490967, -0.30452030897140503,
                                                        0, 0.4107523262500763, 0.8881060481071472};
/* u_cosh: shape [5] */ static const double u_cosh[] = {1.4330863952636719, 1.04533851146698, 1,
                                                        1.0810723304748535, 1.3374348878860474};
/* u_arcsin: shape [5] */ static const double u_arcsin[] = {
    -1.1197694540023804, -0.30469265580177307, 0, 0.41151684522628784, 0.9272952079772949};
/* u_arccos: shape [5] */ static const double u_arccos[] = {2.690565824508667, 1.8754889965057373,
                                                            1.5707963705062866, 1.159279465675354,
                                                            0.6435011029243469};
/* u_arctan: shape [5] */ static const double u_arctan[] = {
    -0.7328150868415833, -0.29145681858062744, 0, 0.38050639629364014, 0.6747409701347351};
/* u_arcsinh: shape [5] */ static const double u_arcsinh[] = {
    -0.8088668584823608, -0.29567307233810425, 0, 0.39003533124923706, 0.7326682209968567};
/* u_arctanh: shape [5] */ static const double u_arctanh[] = {
    -1.4722193479537964, -0.30951961874961853, 0, 0.4236489534378052, 1.0986123085021973};
/* u_arccosh: shape [5] */ static const double u_arccosh[] = {
    0, 0.9624236822128296, 1.316957950592041, 1.7627471685409546, 2.993222951889038};
/* u_tan64: shape [6] */ static const double u_tan64[] = {
    -1.2601582175503392, -0.30933624960962325, 0,
    0.4227932187381618,  1.0296385570503641,   14.101419947171719};
/* shrink: shape [5] */ static const double shrink[] = {-1.7999999523162842, 0, 0, 0,
                                                        1.2999999523162842};
/* mvn_x: shape [2, 3, 2, 2] */ static const double mvn_x[] = {
    1.690525703800356,   -0.4659373705408328, 0.0328201636785844,     0.40751628299650783,
    -0.7889230286257386, 0.00206557290594813, -0.0008903858579313628, -1.7547243063454208,
    1.0176580056634932,  0.6004985159195494,  -0.6254289739667597,    -0.17154826119572117,
    0.5052993741967516,  -0.261356415191647,  -0.2427490786725466,    -1.4532414124907906,
    0.5545803118918878,  0.12388090528703843, 0.2744599237599636,     -1.5265245318698402,
    1.6506996911864755,  0.15433553545635803, -0.3871399432863881,    2.029072220761112};
/* mvn_y: shape [2, 3, 2, 2] */ static const double mvn_y[] = {
    1.9659111255956176,  -0.5819426289953221,  0.007337693636534584, 0.45003987842886317,
    -0.4946401469402944, 0.48493273575641227,  0.4812720293418584,   -1.6907038321767653,
    0.5348335339918012,  0.07399360695224833,  -1.28029977216221,    -0.778893572134365,
    0.5655702665975371,  -0.3402309292188412,  -0.31824642469510356, -1.7484389813492858,
    1.1691757887572134,  0.6357907836045543,   0.822270238445668,    -1.4080975967886467,
    1.2341605092656318,  -0.41888674317621605, -1.0170596872237792,  1.6521521244868889};
/* mvn_y_ax1: shape [2, 3, 2, 2] */ static const double mvn_y_ax1[] = {
    1.0036907634457788,  -1.1718962456414235,  0.7620642328666967,  0.9998474893948974,
    -1.3646626483933253, -0.09961324220439403, 0.6506866285873828,  -1.3660812045050945,
    0.36097188494754634, 1.2715094878458175,   -1.4127508614540791, 0.36623371511019687,
    -0.7531991699079714, -1.4111564202358622,  -0.4375304728766885, -0.6849068880314518,
    -0.6599901372424651, 0.6250912399722,      1.3834219684482703,  -0.7290767301917567,
    1.4131893071504362,  0.7860651802636622,   -0.9458914955715816, 1.4139836182232086};
/* lrn_x: shape [1, 5, 2, 2] */ static const double lrn_x[] = {
    -0.04538603127002716, -1.4506787061691284, -0.4052278697490692, -2.2883150577545166,
    1.0493965148925781,   -0.416474312543869,  -0.7425535321235657, 1.0724701881408691,
    -1.6510756015777588,  0.5354293584823608,  -2.0644147396087646, -0.6621593236923218,
    -1.2042198181152344,  1.4619755744934082,  1.7661608457565308,  -0.3294137418270111,
    0.8407332301139832,   -0.1799864023923874, 0.568061888217926,   -0.7528371810913086};
/* lrn_y: shape [1, 5, 2, 2] */ static const double lrn_y[] = {
    -0.03548075258731842, -1.1305549144744873,  -0.31711524724960327, -1.7642806768417358,
    0.8144930005073547,   -0.3243248164653778,  -0.5746076703071594,  0.8259310126304626,
    -1.2766470909118652,  0.41692355275154114,  -1.5853079557418823,  -0.5168322324752808,
    -0.9320868253707886,  1.138822078704834,    1.3570719957351685,   -0.25751370191574097,
    0.6554164290428162,   -0.14030855894088745, 0.4413517117500305,   -0.5892036557197571};
/* det_x: shape [2, 3, 3] */ static const double det_x[] = {
    -1.708339203167056,  -1.803098658479741,  0.38312185175751196,  2.2475950528076996,
    0.269411630507887,   -0.5246046194008523, 1.9120188623319405,   0.23730184663719345,
    0.10143398521161544, 0.25257773555531754, -0.13237719756684715, -0.3094763405888804,
    -1.4349634660355541, 0.5016241231810408,  -0.09477545043989416, 1.1930859223440107,
    -0.3688184684478463, -1.9063698785304681};
/* det_y: shape [2] */ static const double det_y[] = {1.9673125062601822, 0.14815970103450443};
/* ein_a: shape [2, 3] */ static const double ein_a[] = {-0.0996106318948645,  1.6995372967466809,
                                                         -0.38342312293151254, -0.8898568610207493,
                                                         -1.193591922258183,   -1.0500168110753734};
/* ein_b: shape [3, 4] */ static const double ein_b[] = {
    -0.30019373680016304, -1.1799820934582053, 1.4976391155975834,  -0.28263523607538044,
    0.10864837149473018,  1.4382395207337566,  1.5033185204169108,  -0.21273296701756084,
    0.3319742154884982,   0.7350265843773598,  -0.1928554603497804, -1.7780128529585086};
/* ein_c: shape [4, 2] */ static const double ein_c[] = {
    0.6547057037031101,   0.8943523048205326,  0.4155026142980106,   -0.9235446567132176,
    -0.19602731230796547, -0.5907698188631366, -0.29971123732782745, 1.296885192726673};
/* ein_ab: shape [2, 4] */ static const double ein_ab[] = {
    0.08726785696428888, 2.2800542806764375,  2.4797103585651428,  0.34833710346101626,
    -0.2111308693620158, -1.4384461826584207, -2.9245318094233554, 2.3723646409325934};
/* ein_abc: shape [2, 2] */ static const double ein_abc[] = {
    0.41401177688965796, -3.040868546728745, -0.8736429653869586, 5.944053608217355};
/* ein_e: shape [2, 2, 3, 3] */ static const double ein_e[] = {
    1.5295796333931557,    0.6694181934096611,   0.5487451197783295,   0.6766289895558858,
    -0.012242186606443108, -0.07566346148706628, -0.6736451873760739,  -0.05586745005007389,
    2.2599469866262614,    0.8690393292538257,   -0.34211702342686306, -0.4719266521335214,
    -0.8644899915857458,   0.3743703497375756,   0.3915456935025806,   -1.4431216570009382,
    0.48633519724170227,   -0.569472270518497,   1.4267211566488358,   0.15684398370418373,
    1.7177300496602352,    -0.4581267928860093,  -0.2879838665207813,  0.2998083522698998,
    1.0559482991645386,    0.5658824886274059,   -1.233523943727563,   0.18290070161476676,
    0.022244738540560485,  -0.42906859355599203, -0.6481052928923601,  1.7475772393486444,
    -0.3903864813615635,   -0.8459226371278078,  0.6371128328124404,   0.13062297726225314};
/* ein_ell_t: shape [2, 2, 3, 3] */ static const double ein_ell_t[] = {
    1.5295796333931557,    0.6766289895558858,   -0.6736451873760739,  0.6694181934096611,
    -0.012242186606443108, -0.05586745005007389, 0.5487451197783295,   -0.07566346148706628,
    2.2599469866262614,    0.8690393292538257,   -0.8644899915857458,  -1.4431216570009382,
    -0.34211702342686306,  0.3743703497375756,   0.48633519724170227,  -0.4719266521335214,
    0.3915456935025806,    -0.569472270518497,   1.4267211566488358,   -0.4581267928860093,
    1.0559482991645386,    0.15684398370418373,  -0.2879838665207813,  0.5658824886274059,
    1.7177300496602352,    0.2998083522698998,   -1.233523943727563,   0.18290070161476676,
    -0.6481052928923601,   -0.8459226371278078,  0.022244738540560485, 1.7475772393486444,
    0.6371128328124404,    -0.42906859355599203, -0.3903864813615635,  0.13062297726225314};
/* ein_diag: shape [2, 2, 3] */ static const double ein_diag[] = {
    1.5295796333931557, -0.012242186606443108, 2.2599469866262614, 0.8690393292538257,
    0.3743703497375756, -0.569472270518497,    1.4267211566488358, -0.2879838665207813,
    -1.233523943727563, 0.18290070161476676,   1.7475772393486444, 0.13062297726225314};
/* ein_implicit: shape [2, 4] */ static const double ein_implicit[] = {
    0.08726785696428888, 2.2800542806764375,  2.4797103585651428,  0.34833710346101626,
    -0.2111308693620158, -1.4384461826584207, -2.9245318094233554, 2.3723646409325934};
/* ein_bcast: shape [2, 1, 2, 4] */ static const double ein_bcast[] = {
    -0.7294240457674717,  -3.184770972919181,  1.614879213664184,   0.6101396857349343,
    -0.34792791355362784, 0.8190550878458323,  0.13792784342363767, 4.211323391793232,
    -0.5005727000421186,  -2.9191422694955778, 1.4072334837209908,  -0.8984670957305538,
    -0.45019852466012233, 0.8828558073000667,  2.22185649693754,    3.422398955785652};
/* ein_bcast_x: shape [2, 1, 2, 3] */ static const double ein_bcast_x[] = {
    1.6243453636632417,  -0.6117564136500754, -0.5281717522634557, -1.0729686221561705,
    0.8654076293246785,  -2.3015386968802827, 1.74481176421648,    -0.7612069008951028,
    0.31903909605709857, -0.2493703754774101, 1.462107937044974,   -2.060140709497654};
/* nll_x: shape [3, 4, 2] */ static const double nll_x[] = {
    -1.8196699619293213, -0.9494367837905884, -1.2552306652069092, -1.3685486316680908,
    -0.7796555757522583, -1.4471021890640259, -2.3607778549194336, -2.0930209159851074,
    -1.2949497699737549, -0.9244771003723145, -1.8519623279571533, -2.9666249752044678,
    -0.6858224868774414, -2.470719575881958,  -2.7259554862976074, -0.7608683705329895,
    -1.4664231538772583, -0.6039658188819885, -1.2862237691879272, -2.2220537662506104,
    -1.998887538909912,  -1.615018367767334,  -1.0287528038024902, -1.923551321029663};
/* nll_none: shape [3, 2] */ static const double nll_none[] = {
    0.9098349809646606, 3.139531373977661, 1.8519623279571533, 0,
    3.997775077819824,  3.230036735534668};
/* nll_sum: shape [] */ static const double nll_sum[] = {13.129140853881836};
/* nll_mean: shape [] */ static const double nll_mean[] = {1.875591516494751};
/* sce_x: shape [3, 4, 2] */ static const double sce_x[] = {
    -0.07581386715173721, 0.7813017964363098,  0.4886254072189331,  0.36219000816345215,
    0.964200496673584,    0.2836364209651947,  -0.6169219613075256, -0.3622822165489197,
    -0.5209723114967346,  0.20972205698490143, -1.0779849290847778, -1.8324259519577026,
    0.08815492689609528,  -1.3365205526351929, -1.951978087425232,  0.3733307719230652,
    -0.711053192615509,   0.4961254298686981,  -0.5308537483215332, -1.1219624280929565,
    -1.243517518043518,   -0.5149272084236145, -0.2733828127384186, -0.8234601020812988};
/* sce_mean: shape [] */ static const double sce_mean[] = {1.875591516494751};
/* sce_noweight_sum: shape [] */ static const double sce_noweight_sum[] = {10.303035736083984};
/* sce_logprob: shape [3, 4, 2] */ static const double sce_logprob[] = {
    -1.8196699619293213, -0.9494367837905884, -1.2552306652069092, -1.3685486316680908,
    -0.7796555757522583, -1.4471021890640259, -2.3607778549194336, -2.0930209159851074,
    -1.2949497699737549, -0.9244771003723145, -1.8519623279571533, -2.9666249752044678,
    -0.6858224868774414, -2.470719575881958,  -2.7259554862976074, -0.7608683705329895,
    -1.4664231538772583, -0.6039658188819885, -1.2862237691879272, -2.2220537662506104,
    -1.998887538909912,  -1.615018367767334,  -1.0287528038024902, -1.923551321029663};
/* mu_x: shape [1, 1, 2, 2] */ static const double mu_x[] = {
    0.39563116431236267, 0.8989084959030151, 1.0127553939819336, 1.090165138244629};
/* mu_i: shape [1, 1, 2, 2] */ static const double mu_i[] = {1, 2, 13, 15};
/* mu_y: shape [1, 1, 4, 4] */ static const double mu_y[] = {
    0, 0.39563116431236267, 0.8989084959030151, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0127553939819336,
    0, 1.090165138244629};
/* gs_x: shape [1, 2, 3, 4] */ static const double gs_x[] = {
    -1.5826646089553833,  -0.32456663250923157, 1.9263681173324585,  -0.3300117254257202,
    0.19844505190849304,  0.7820726633071899,   1.0391076803207397,  -0.7245107293128967,
    -0.13543689250946045, 0.7471182346343994,   0.6118157505989075,  1.867783546447754,
    2.5116028785705566,   -1.254785180091858,   0.8164564967155457,  -1.065398931503296,
    -1.6370213031768799,  0.1577119082212448,   0.39574092626571655, -1.3677396774291992,
    -0.10073431581258774, 0.23701459169387817,  0.6326820850372314,  -0.09167716652154922};
/* gs_grid: shape [1, 2, 3, 2] */ static const double gs_grid[] = {
    -0.6047853231430054, -0.002499222755432129, 0.6363029479980469,  0.5754770040512085,
    -0.1524444818496704, 0.14312458038330078,   0.3537771701812744,  -1.0189704895019531,
    -0.4407511353492737, 0.050899624824523926,  -0.7417919635772705, -0.5677545666694641};
/* gs_bilinear_zeros_0: shape [1, 2, 2, 3] */ static const double gs_bilinear_zeros_0[] = {
    0.3620049059391022,  1.321519374847412,   0.80828458070755,     0.6875334978103638,
    0.5480416417121887,  -1.2993943691253662, -1.1062804460525513,  -0.06918696314096451,
    0.22778235375881195, 0.20081619918346405, -0.47848984599113464, 1.847794771194458};
/* gs_nearest_border_1: shape [1, 2, 2, 3] */ static const double gs_nearest_border_1[] = {
    0.7820726633071899, 0.6118157505989075,  0.7820726633071899, 1.9263681173324585,
    0.7820726633071899, -1.5826646089553833, 0.1577119082212448, 0.6326820850372314,
    0.1577119082212448, 0.8164564967155457,  0.1577119082212448, 2.5116028785705566};
/* gs_bicubic_reflection_0: shape [1, 2, 2, 3] */ static const double gs_bicubic_reflection_0[] = {
    0.3396986722946167, 1.374703288078308,  0.9631597399711609,  1.917699933052063,
    0.6100195646286011, -1.339053988456726, -1.161136269569397,  -0.06041567772626877,
    0.5596866607666016, 0.7816591858863831, -0.5122904777526855, 1.928184986114502};
/* gs_bilinear_reflection_1: shape [1, 2, 2, 3] */ static const double gs_bilinear_reflection_1[] =
    {0.5409802198410034, 0.7814334034919739,   0.8315757513046265,   1.84062922000885,
     0.683803915977478,  -0.43842729926109314, -0.5709349513053894,  0.0024329591542482376,
     0.2397690713405609, 0.7508354187011719,   -0.11548198014497757, 0.1906203329563141};
/* gs_bicubic_border_1: shape [1, 2, 2, 3] */ static const double gs_bicubic_border_1[] = {
    0.5206092596054077, 0.7253929972648621,  0.9939667582511902,   1.9341377019882202,
    0.7249152064323425, -0.5454393029212952, -0.5785817503929138,  0.005935947876423597,
    0.594373881816864,  0.8229008316993713,  -0.07240138202905655, 0.058822937309741974};
/* qmm_a: shape [2, 3] */ static const double qmm_a[] = {55, 20, 43, 177, 18, 184};
/* qmm_b: shape [3, 4] */ static const double qmm_b[] = {149, 178, 121, 150, 18, 197,
                                                         103, 247, 5,   133, 70, 223};
/* qmm_y: shape [2, 4] */ static const double qmm_y[] = {186, 22, 121, 0, 146, 109, 114, 108};
/* qc_x: shape [1, 2, 3, 3] */ static const double qc_x[] = {
    29, 16, 42, 118, 46, -60, 110, -26, 77, 66, 12, -74, -40, 125, -37, 123, 55, -112};
/* qc_w: shape [2, 2, 2, 2] */ static const double qc_w[] = {110, -4, 5,  -24, -35, -55, 44,  55,
                                                             -89, 78, 70, 62,  2,   -91, -42, 113};
/* qc_y: shape [1, 2, 4, 4] */ static const double qc_y[] = {
    8,  9,  -3,  -1, -10, 11, 19, 12,  12,  29,  0,   -11, -8, 11,  5,  22,
    33, 10, -10, 21, 2,   78, 0,  -18, 105, -30, -48, 47,  -6, -49, 57, -20};
/* uq_y: shape [4] */ static const double uq_y[] = {1, 2, 3, 4};
/* uq_idx: shape [4] */ static const double uq_idx[] = {1, 0, 3, 4};
/* uq_inv: shape [6] */ static const double uq_inv[] = {1, 0, 0, 2, 3, 2};
/* uq_cnt: shape [4] */ static const double uq_cnt[] = {2, 1, 2, 1};
/* uqa_y: shape [2, 3] */ static const double uqa_y[] = {1, 0, 0, 2, 3, 4};
/* uqa_idx: shape [2] */ static const double uqa_idx[] = {0, 2};
/* uqa_inv: shape [4] */ static const double uqa_inv[] = {0, 0, 1, 0};
/* uqa_cnt: shape [2] */ static const double uqa_cnt[] = {3, 1};
/* gnd_y: shape [2, 2] */ static const double gnd_y[] = {6, 0, 23, 17};
/* scel_add: shape [2, 3] */ static const double scel_add[] = {30, 1, 2, 3, 4, 75};
/* snd_mul: shape [3, 4] */ static const double snd_mul[] = {2, 4, 6,  8,   5,   6,
                                                             7, 8, 90, 200, 330, 480};
/* rs_y: shape [3, 4] */ static const double rs_y[] = {3, 2, 1, 0, 4, 5, 6, 7, 9, 8, 10, 11};
/* cmp_ax1: shape [3, 2] */ static const double cmp_ax1[] = {0, 2, 4, 6, 8, 10};
/* cmp_flat: shape [3] */ static const double cmp_flat[] = {1, 2, 5};

/* ---- unary family ---- */

static void unary_case(enum pq_op op, const double *x, const double *y) {
    mk_node(op, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 1, D(5), x)};
    run1(in, 1, PQ_DTYPE_F32, 1, D(5), y, 1e-6);
}

Test(ref_extra, trig_and_hyperbolic_f32) {
    const double *x = V(-0.9, -0.3, 0, 0.4, 0.8);
    unary_case(PQ_OP_TAN, x, u_tan);
    unary_case(PQ_OP_SINH, x, u_sinh);
    unary_case(PQ_OP_COSH, x, u_cosh);
    unary_case(PQ_OP_ASIN, x, u_arcsin);
    unary_case(PQ_OP_ACOS, x, u_arccos);
    unary_case(PQ_OP_ATAN, x, u_arctan);
    unary_case(PQ_OP_ASINH, x, u_arcsinh);
    unary_case(PQ_OP_ATANH, x, u_arctanh);
    unary_case(PQ_OP_ACOSH, V(1, 1.5, 2, 3, 10), u_arccosh);
}

Test(ref_extra, tan_f64_and_integer_input_rejected) {
    mk_node(PQ_OP_TAN, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_F64, 1, D(6), V(-0.9, -0.3, 0, 0.4, 0.8, 1.5))};
    run1(in, 1, PQ_DTYPE_F64, 1, D(6), u_tan64, 1e-14);
    mk_node(PQ_OP_ASIN, 1, 1);
    pq_tensor *bad[1] = {T(PQ_DTYPE_I32, 1, D(2), NULL)};
    run_fail(bad, 1, PQ_ERR_INVALID);
}

Test(ref_extra, shrink_float_and_int) {
    mk_node(PQ_OP_SHRINK, 1, 1);
    set_float("lambd", 0.5f);
    set_float("bias", 0.2f);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 1, D(5), V(-2, -0.5, 0, 0.4, 1.5))};
    run1(in, 1, PQ_DTYPE_F32, 1, D(5), shrink, 1e-7);
    /* integers: lambd 1, bias 1 -> x < -1: x + 1; x > 1: x - 1; else 0 */
    mk_node(PQ_OP_SHRINK, 1, 1);
    set_float("lambd", 1.0f);
    set_float("bias", 1.0f);
    pq_tensor *in2[1] = {T(PQ_DTYPE_I8, 1, D(5), V(-5, -1, 0, 1, 7))};
    run1(in2, 1, PQ_DTYPE_I8, 1, D(5), V(-4, 0, 0, 0, 6), 0);
}

/* ---- CastLike, BitShift, EyeLike ---- */

Test(ref_extra, cast_like) {
    mk_node(PQ_OP_CAST_LIKE, 2, 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 1, D(3), V(1.7, -2.2, 300)),
                        T(PQ_DTYPE_I32, 1, D(1), NULL)};
    run1(in, 2, PQ_DTYPE_I32, 1, D(3), V(1, -2, 300), 0);
    mk_node(PQ_OP_CAST_LIKE, 2, 1);
    pq_tensor *in2[2] = {T(PQ_DTYPE_F64, 2, D(1, 2), V(0.5, 65504)),
                         T(PQ_DTYPE_F16, 0, NULL, NULL)};
    run1(in2, 2, PQ_DTYPE_F16, 2, D(1, 2), V(0.5, 65504), 0);
}

Test(ref_extra, bit_shift) {
    mk_node(PQ_OP_BIT_SHIFT, 2, 1);
    set_str("direction", "LEFT");
    pq_tensor *in[2] = {T(PQ_DTYPE_U8, 1, D(4), V(16, 4, 1, 255)),
                        T(PQ_DTYPE_U8, 1, D(4), V(1, 2, 3, 1))};
    run1(in, 2, PQ_DTYPE_U8, 1, D(4), V(32, 16, 8, 254), 0);
    /* broadcast shift amount; shifts >= the bit width give 0 */
    mk_node(PQ_OP_BIT_SHIFT, 2, 1);
    set_str("direction", "RIGHT");
    pq_tensor *in2[2] = {T(PQ_DTYPE_U32, 2, D(2, 2), V(4096, 7, 4294967295.0, 1)),
                         T(PQ_DTYPE_U32, 2, D(1, 2), V(4, 40))};
    run1(in2, 2, PQ_DTYPE_U32, 2, D(2, 2), V(256, 0, 268435455, 0), 0);
    /* signed inputs and a missing direction are invalid */
    mk_node(PQ_OP_BIT_SHIFT, 2, 1);
    set_str("direction", "LEFT");
    pq_tensor *bad[2] = {T(PQ_DTYPE_I32, 1, D(1), NULL), T(PQ_DTYPE_I32, 1, D(1), NULL)};
    run_fail(bad, 2, PQ_ERR_INVALID);
    mk_node(PQ_OP_BIT_SHIFT, 2, 1);
    pq_tensor *bad2[2] = {T(PQ_DTYPE_U8, 1, D(1), NULL), T(PQ_DTYPE_U8, 1, D(1), NULL)};
    run_fail(bad2, 2, PQ_ERR_INVALID);
}

Test(ref_extra, eye_like) {
    mk_node(PQ_OP_EYE_LIKE, 1, 1);
    set_int("k", 1);
    set_int("dtype", 7); /* ONNX INT64 */
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 2, D(3, 4), NULL)};
    run1(in, 1, PQ_DTYPE_I64, 2, D(3, 4), V(0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1), 0);
    mk_node(PQ_OP_EYE_LIKE, 1, 1);
    set_int("k", -1);
    pq_tensor *in2[1] = {T(PQ_DTYPE_F32, 2, D(3, 2), NULL)};
    run1(in2, 1, PQ_DTYPE_F32, 2, D(3, 2), V(0, 0, 1, 0, 0, 1), 0);
    mk_node(PQ_OP_EYE_LIKE, 1, 1);
    pq_tensor *bad[1] = {T(PQ_DTYPE_F32, 1, D(3), NULL)};
    run_fail(bad, 1, PQ_ERR_INVALID);
}

/* ---- NonZero, GatherND, Scatter*, Compress, ReverseSequence ---- */

Test(ref_extra, non_zero) {
    mk_node(PQ_OP_NON_ZERO, 1, 1);
    /* np.nonzero([[1,0],[0,3],[2,0]]) = ([0,1,2],[0,1,0]) */
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 2, D(3, 2), V(1, 0, 0, 3, 2, -0.0))};
    run1(in, 1, PQ_DTYPE_I64, 2, D(2, 3), V(0, 1, 2, 0, 1, 0), 0);
    mk_node(PQ_OP_NON_ZERO, 1, 1);
    pq_tensor *in2[1] = {T(PQ_DTYPE_BOOL, 1, D(3), V(0, 0, 0))};
    run1(in2, 1, PQ_DTYPE_I64, 2, D(1, 0), NULL, 0);
}

Test(ref_extra, gather_nd) {
    mk_node(PQ_OP_GATHER_ND, 2, 1);
    set_int("batch_dims", 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_I32, 3, D(2, 3, 4), NULL),
                        T(PQ_DTYPE_I64, 3, D(2, 2, 2), V(1, 2, 0, 0, 2, 3, 1, 1))};
    run1(in, 2, PQ_DTYPE_I32, 2, D(2, 2), gnd_y, 0);
    /* slices, negative index: data [3,2], indices [[-1],[0]] -> rows 2 and 0 */
    mk_node(PQ_OP_GATHER_ND, 2, 1);
    pq_tensor *in2[2] = {T(PQ_DTYPE_F32, 2, D(3, 2), NULL), T(PQ_DTYPE_I64, 2, D(2, 1), V(-1, 0))};
    run1(in2, 2, PQ_DTYPE_F32, 2, D(2, 2), V(4, 5, 0, 1), 0);
    mk_node(PQ_OP_GATHER_ND, 2, 1);
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 2, D(3, 2), NULL), T(PQ_DTYPE_I64, 2, D(1, 1), V(3))};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

Test(ref_extra, scatter_elements_reductions) {
    const double *idx = V(0, 0, 2, -1), *upd = V(10, 20, 30, 40);
    mk_node(PQ_OP_SCATTER_ELEMENTS, 3, 1);
    set_int("axis", 1);
    set_str("reduction", "add");
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 2, D(2, 3), NULL), T(PQ_DTYPE_I64, 2, D(2, 2), idx),
                        T(PQ_DTYPE_F32, 2, D(2, 2), upd)};
    run1(in, 3, PQ_DTYPE_F32, 2, D(2, 3), scel_add, 0);
    /* max/min on integers: row 0 col 0 gets max(0, 10, 20) = 20; row 1 col 2 gets min(5, 30, 40) */
    mk_node(PQ_OP_SCATTER_ELEMENTS, 3, 1);
    set_int("axis", 1);
    set_str("reduction", "max");
    pq_tensor *in2[3] = {T(PQ_DTYPE_I64, 2, D(2, 3), NULL), T(PQ_DTYPE_I64, 2, D(2, 2), idx),
                         T(PQ_DTYPE_I64, 2, D(2, 2), upd)};
    run1(in2, 3, PQ_DTYPE_I64, 2, D(2, 3), V(20, 1, 2, 3, 4, 40), 0);
    mk_node(PQ_OP_SCATTER_ELEMENTS, 3, 1);
    set_int("axis", -1);
    set_str("reduction", "min");
    pq_tensor *in3[3] = {T(PQ_DTYPE_I64, 2, D(2, 3), NULL), T(PQ_DTYPE_I64, 2, D(2, 2), idx),
                         T(PQ_DTYPE_I64, 2, D(2, 2), upd)};
    run1(in3, 3, PQ_DTYPE_I64, 2, D(2, 3), V(0, 1, 2, 3, 4, 5), 0);
    /* the legacy Scatter (axis 0, no reduction): data[idx[i][j]][j] = upd[i][j] */
    mk_node(PQ_OP_SCATTER, 3, 1);
    pq_tensor *in4[3] = {T(PQ_DTYPE_F32, 2, D(3, 2), NULL), T(PQ_DTYPE_I32, 2, D(1, 2), V(2, 0)),
                         T(PQ_DTYPE_F32, 2, D(1, 2), V(-1, -2))};
    run1(in4, 3, PQ_DTYPE_F32, 2, D(3, 2), V(0, -2, 2, 3, -1, 5), 0);
    mk_node(PQ_OP_SCATTER_ELEMENTS, 3, 1);
    pq_tensor *bad[3] = {T(PQ_DTYPE_F32, 1, D(3), NULL), T(PQ_DTYPE_I64, 1, D(1), V(3)),
                         T(PQ_DTYPE_F32, 1, D(1), NULL)};
    run_fail(bad, 3, PQ_ERR_INVALID);
}

Test(ref_extra, scatter_nd) {
    mk_node(PQ_OP_SCATTER_ND, 3, 1);
    set_str("reduction", "mul");
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 2, D(3, 4), V(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)),
                        T(PQ_DTYPE_I64, 2, D(3, 1), V(2, 0, 2)),
                        T(PQ_DTYPE_F32, 2, D(3, 4), V(1, 2, 3, 4, 2, 2, 2, 2, 10, 10, 10, 10))};
    run1(in, 3, PQ_DTYPE_F32, 2, D(3, 4), snd_mul, 0);
    /* element updates, no reduction */
    mk_node(PQ_OP_SCATTER_ND, 3, 1);
    pq_tensor *in2[3] = {T(PQ_DTYPE_I32, 2, D(2, 2), NULL),
                         T(PQ_DTYPE_I64, 2, D(2, 2), V(0, 1, 1, 0)),
                         T(PQ_DTYPE_I32, 1, D(2), V(7, 8))};
    run1(in2, 3, PQ_DTYPE_I32, 2, D(2, 2), V(0, 7, 8, 3), 0);
    /* updates of the wrong shape */
    mk_node(PQ_OP_SCATTER_ND, 3, 1);
    pq_tensor *bad[3] = {T(PQ_DTYPE_I32, 2, D(2, 2), NULL), T(PQ_DTYPE_I64, 2, D(2, 2), NULL),
                         T(PQ_DTYPE_I32, 1, D(3), NULL)};
    run_fail(bad, 3, PQ_ERR_INVALID);
}

Test(ref_extra, compress) {
    mk_node(PQ_OP_COMPRESS, 2, 1);
    set_int("axis", 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 2, D(3, 4), NULL), T(PQ_DTYPE_BOOL, 1, D(3), V(1, 0, 1))};
    run1(in, 2, PQ_DTYPE_F32, 2, D(3, 2), cmp_ax1, 0);
    mk_node(PQ_OP_COMPRESS, 2, 1);
    pq_tensor *in2[2] = {T(PQ_DTYPE_I64, 2, D(3, 4), NULL),
                         T(PQ_DTYPE_BOOL, 1, D(6), V(0, 1, 1, 0, 0, 1))};
    run1(in2, 2, PQ_DTYPE_I64, 1, D(3), cmp_flat, 0);
    mk_node(PQ_OP_COMPRESS, 2, 1);
    set_int("axis", 0);
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 2, D(2, 2), NULL), T(PQ_DTYPE_BOOL, 1, D(3), V(1, 1, 1))};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

Test(ref_extra, reverse_sequence) {
    mk_node(PQ_OP_REVERSE_SEQUENCE, 2, 1);
    set_int("batch_axis", 0);
    set_int("time_axis", 1);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 2, D(3, 4), NULL), T(PQ_DTYPE_I64, 1, D(3), V(4, 0, 2))};
    run1(in, 2, PQ_DTYPE_F32, 2, D(3, 4), rs_y, 0);
    /* time-major with a trailing dim: x [3 time, 2 batch, 2], lens [3, 1] */
    mk_node(PQ_OP_REVERSE_SEQUENCE, 2, 1);
    pq_tensor *in2[2] = {T(PQ_DTYPE_F32, 3, D(3, 2, 2), NULL), T(PQ_DTYPE_I64, 1, D(2), V(3, 1))};
    run1(in2, 2, PQ_DTYPE_F32, 3, D(3, 2, 2), V(8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11), 0);
    mk_node(PQ_OP_REVERSE_SEQUENCE, 2, 1);
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 2, D(3, 2), NULL), T(PQ_DTYPE_I64, 1, D(2), V(4, 1))};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

/* ---- Unique ---- */

static void unique_check(pq_tensor **o, int yrank, const int64_t *ydims, const double *y, int64_t u,
                         int64_t n, const double *idx, const double *inv, const double *cnt) {
    expect(o[0], PQ_DTYPE_F32, yrank, ydims, y, 0);
    expect(o[1], PQ_DTYPE_I64, 1, D(u), idx, 0);
    expect(o[2], PQ_DTYPE_I64, 1, D(n), inv, 0);
    expect(o[3], PQ_DTYPE_I64, 1, D(u), cnt, 0);
    free_all(o, 4);
}

Test(ref_extra, unique_sorted_unsorted_axis) {
    const double *x = V(2, 1, 1, 3, 4, 3);
    mk_node(PQ_OP_UNIQUE, 1, 4);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 1, D(6), x)};
    pq_tensor *o[4] = {shell(), shell(), shell(), shell()};
    cr_assert_eq(run(in, 1, o, 4), PQ_OK, "%s", err.msg);
    unique_check(o, 1, D(4), uq_y, 4, 6, uq_idx, uq_inv, uq_cnt);
    /* sorted=0: order of first occurrence (2, 1, 3, 4) */
    mk_node(PQ_OP_UNIQUE, 1, 4);
    set_int("sorted", 0);
    pq_tensor *o2[4] = {shell(), shell(), shell(), shell()};
    cr_assert_eq(run(in, 1, o2, 4), PQ_OK, "%s", err.msg);
    unique_check(o2, 1, D(4), V(2, 1, 3, 4), 4, 6, V(0, 1, 3, 4), V(0, 1, 1, 2, 3, 2),
                 V(1, 2, 2, 1));
    pq_tensor_destroy(in[0]);
    /* rows of a matrix */
    mk_node(PQ_OP_UNIQUE, 1, 4);
    set_int("axis", 0);
    pq_tensor *in2[1] = {T(PQ_DTYPE_F32, 2, D(4, 3), V(1, 0, 0, 1, 0, 0, 2, 3, 4, 1, 0, 0))};
    pq_tensor *o3[4] = {shell(), shell(), shell(), shell()};
    cr_assert_eq(run(in2, 1, o3, 4), PQ_OK, "%s", err.msg);
    unique_check(o3, 2, D(2, 3), uqa_y, 2, 4, uqa_idx, uqa_inv, uqa_cnt);
    pq_tensor_destroy(in2[0]);
}

/* ---- MVN, LRN, Det ---- */

Test(ref_extra, mean_variance_normalization) {
    mk_node(PQ_OP_MEAN_VARIANCE_NORMALIZATION, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_F64, 4, D(2, 3, 2, 2), mvn_x)};
    run1(in, 1, PQ_DTYPE_F64, 4, D(2, 3, 2, 2), mvn_y, 1e-9);
    mk_node(PQ_OP_MEAN_VARIANCE_NORMALIZATION, 1, 1);
    set_ints("axes", D(-3), 1);
    pq_tensor *in2[1] = {T(PQ_DTYPE_F32, 4, D(2, 3, 2, 2), mvn_x)};
    run1(in2, 1, PQ_DTYPE_F32, 4, D(2, 3, 2, 2), mvn_y_ax1, 1e-5);
}

Test(ref_extra, lrn) {
    mk_node(PQ_OP_LRN, 1, 1);
    set_int("size", 3);
    set_float("alpha", 0.02f);
    set_float("beta", 0.6f);
    set_float("bias", 1.5f);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 4, D(1, 5, 2, 2), lrn_x)};
    run1(in, 1, PQ_DTYPE_F32, 4, D(1, 5, 2, 2), lrn_y, 1e-6);
    mk_node(PQ_OP_LRN, 1, 1);
    pq_tensor *bad[1] = {T(PQ_DTYPE_F32, 4, D(1, 5, 2, 2), NULL)}; /* size missing */
    run_fail(bad, 1, PQ_ERR_INVALID);
}

Test(ref_extra, det) {
    mk_node(PQ_OP_DET, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_F64, 3, D(2, 3, 3), det_x)};
    run1(in, 1, PQ_DTYPE_F64, 1, D(2), det_y, 1e-12);
    /* singular and a pivot-requiring matrix: det([[0,1],[1,0]]) = -1 */
    mk_node(PQ_OP_DET, 1, 1);
    pq_tensor *in2[1] = {T(PQ_DTYPE_F32, 3, D(2, 2, 2), V(1, 2, 2, 4, 0, 1, 1, 0))};
    run1(in2, 1, PQ_DTYPE_F32, 1, D(2), V(0, -1), 0);
    mk_node(PQ_OP_DET, 1, 1);
    pq_tensor *bad[1] = {T(PQ_DTYPE_F32, 2, D(2, 3), NULL)};
    run_fail(bad, 1, PQ_ERR_INVALID);
}

/* ---- Einsum ---- */

static void einsum1(const char *eq, pq_tensor **in, uint32_t nin, int rank, const int64_t *dims,
                    const double *y) {
    mk_node(PQ_OP_EINSUM, nin, 1);
    set_str("equation", eq);
    run1(in, nin, PQ_DTYPE_F64, rank, dims, y, 1e-12);
}

Test(ref_extra, einsum_forms) {
    pq_tensor *a[2] = {T(PQ_DTYPE_F64, 2, D(2, 3), ein_a), T(PQ_DTYPE_F64, 2, D(3, 4), ein_b)};
    einsum1("ij,jk->ik", a, 2, 2, D(2, 4), ein_ab);
    pq_tensor *b[2] = {T(PQ_DTYPE_F64, 2, D(2, 3), ein_a), T(PQ_DTYPE_F64, 2, D(3, 4), ein_b)};
    einsum1("ij, jk", b, 2, 2, D(2, 4), ein_implicit);
    pq_tensor *c[3] = {T(PQ_DTYPE_F64, 2, D(2, 3), ein_a), T(PQ_DTYPE_F64, 2, D(3, 4), ein_b),
                       T(PQ_DTYPE_F64, 2, D(4, 2), ein_c)};
    einsum1("ab,bc,cd->ad", c, 3, 2, D(2, 2), ein_abc);
    pq_tensor *d[1] = {T(PQ_DTYPE_F64, 4, D(2, 2, 3, 3), ein_e)};
    einsum1("...ij->...ji", d, 1, 4, D(2, 2, 3, 3), ein_ell_t);
    pq_tensor *e[1] = {T(PQ_DTYPE_F64, 4, D(2, 2, 3, 3), ein_e)};
    einsum1("...ii->...i", e, 1, 3, D(2, 2, 3), ein_diag);
    pq_tensor *f[2] = {T(PQ_DTYPE_F64, 4, D(2, 1, 2, 3), ein_bcast_x),
                       T(PQ_DTYPE_F64, 2, D(3, 4), ein_b)};
    einsum1("...ij,jk->...ik", f, 2, 4, D(2, 1, 2, 4), ein_bcast);
    /* full contraction to a scalar, integers: 1*4 + 2*5 + 3*6 = 32 */
    mk_node(PQ_OP_EINSUM, 2, 1);
    set_str("equation", "i,i->");
    pq_tensor *h[2] = {T(PQ_DTYPE_I32, 1, D(3), V(1, 2, 3)), T(PQ_DTYPE_I32, 1, D(3), V(4, 5, 6))};
    run1(h, 2, PQ_DTYPE_I32, 0, NULL, V(32), 0);
}

Test(ref_extra, einsum_invalid) {
    mk_node(PQ_OP_EINSUM, 2, 1);
    set_str("equation", "ij,jk->iq");
    pq_tensor *a[2] = {T(PQ_DTYPE_F32, 2, D(2, 3), NULL), T(PQ_DTYPE_F32, 2, D(3, 4), NULL)};
    run_fail(a, 2, PQ_ERR_INVALID);
    mk_node(PQ_OP_EINSUM, 2, 1);
    set_str("equation", "ij,jk->ik");
    pq_tensor *b[2] = {T(PQ_DTYPE_F32, 2, D(2, 3), NULL), T(PQ_DTYPE_F32, 2, D(2, 4), NULL)};
    run_fail(b, 2, PQ_ERR_INVALID);
    mk_node(PQ_OP_EINSUM, 1, 1);
    set_str("equation", "i.j");
    pq_tensor *c[1] = {T(PQ_DTYPE_F32, 2, D(2, 3), NULL)};
    run_fail(c, 1, PQ_ERR_INVALID);
    mk_node(PQ_OP_EINSUM, 1, 1);
    set_str("equation", "ijk->i");
    pq_tensor *d[1] = {T(PQ_DTYPE_F32, 2, D(2, 3), NULL)};
    run_fail(d, 1, PQ_ERR_INVALID);
}

/* ---- MaxUnpool ---- */

Test(ref_extra, max_unpool) {
    mk_node(PQ_OP_MAX_UNPOOL, 2, 1);
    set_ints("kernel_shape", D(2, 2), 2);
    set_ints("strides", D(2, 2), 2);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 4, D(1, 1, 2, 2), mu_x),
                        T(PQ_DTYPE_I64, 4, D(1, 1, 2, 2), mu_i)};
    run1(in, 2, PQ_DTYPE_F32, 4, D(1, 1, 4, 4), mu_y, 0);
    /* output_shape pads at the end: index 5 of the 4x4 grid is (1,1) -> 6 in a 5x5 output */
    mk_node(PQ_OP_MAX_UNPOOL, 3, 1);
    set_ints("kernel_shape", D(2, 2), 2);
    set_ints("strides", D(2, 2), 2);
    pq_tensor *in2[3] = {T(PQ_DTYPE_F32, 4, D(1, 1, 2, 2), V(9, 8, 7, 6)),
                         T(PQ_DTYPE_I64, 4, D(1, 1, 2, 2), V(5, 7, 13, 15)),
                         T(PQ_DTYPE_I64, 1, D(4), V(1, 1, 5, 5))};
    double y[25] = {0};
    y[6] = 9;
    y[8] = 8;
    y[16] = 7;
    y[18] = 6;
    run1(in2, 3, PQ_DTYPE_F32, 4, D(1, 1, 5, 5), y, 0);
    mk_node(PQ_OP_MAX_UNPOOL, 2, 1);
    set_ints("kernel_shape", D(2, 2), 2);
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 4, D(1, 1, 1, 1), NULL),
                         T(PQ_DTYPE_I64, 4, D(1, 1, 1, 1), V(4))};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

/* ---- losses ---- */

static pq_tensor *nll_target(void) {
    return T(PQ_DTYPE_I64, 2, D(3, 2), V(0, 3, 1, -1, 2, 2));
}
static pq_tensor *nll_weight(void) {
    return T(PQ_DTYPE_F32, 1, D(4), V(0.5, 1.0, 2.0, 1.5));
}

Test(ref_extra, nll_loss_reductions) {
    const char *red[3] = {"none", "sum", "mean"};
    const double *want[3] = {nll_none, nll_sum, nll_mean};
    for (int r = 0; r < 3; r++) {
        mk_node(PQ_OP_NEGATIVE_LOG_LIKELIHOOD_LOSS, 3, 1);
        set_str("reduction", red[r]);
        set_int("ignore_index", -1);
        pq_tensor *in[3] = {T(PQ_DTYPE_F32, 3, D(3, 4, 2), nll_x), nll_target(), nll_weight()};
        if (r == 0)
            run1(in, 3, PQ_DTYPE_F32, 2, D(3, 2), want[r], 1e-6);
        else
            run1(in, 3, PQ_DTYPE_F32, 0, NULL, want[r], 1e-6);
    }
    /* a target outside [0, C) that is not ignore_index */
    mk_node(PQ_OP_NEGATIVE_LOG_LIKELIHOOD_LOSS, 2, 1);
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 3, D(3, 4, 2), nll_x), nll_target()};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

Test(ref_extra, softmax_cross_entropy_loss) {
    mk_node(PQ_OP_SOFTMAX_CROSS_ENTROPY_LOSS, 3, 2);
    set_int("ignore_index", -1);
    pq_tensor *in[3] = {T(PQ_DTYPE_F32, 3, D(3, 4, 2), sce_x), nll_target(), nll_weight()};
    pq_tensor *o[2] = {shell(), shell()};
    cr_assert_eq(run(in, 3, o, 2), PQ_OK, "%s", err.msg);
    expect(o[0], PQ_DTYPE_F32, 0, NULL, sce_mean, 1e-6);
    expect(o[1], PQ_DTYPE_F32, 3, D(3, 4, 2), sce_logprob, 1e-6);
    free_all(o, 2);
    free_all(in, 3);
    mk_node(PQ_OP_SOFTMAX_CROSS_ENTROPY_LOSS, 2, 1);
    set_str("reduction", "sum");
    pq_tensor *in2[2] = {T(PQ_DTYPE_F32, 3, D(3, 4, 2), sce_x),
                         T(PQ_DTYPE_I32, 2, D(3, 2), V(0, 3, 1, 0, 2, 2))};
    run1(in2, 2, PQ_DTYPE_F32, 0, NULL, sce_noweight_sum, 1e-6);
    mk_node(PQ_OP_SOFTMAX_CROSS_ENTROPY_LOSS, 2, 1);
    set_str("reduction", "avg");
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 2, D(3, 4), NULL), T(PQ_DTYPE_I64, 1, D(3), NULL)};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

/* ---- QLinearMatMul, QLinearConv ---- */

Test(ref_extra, qlinear_matmul) {
    mk_node(PQ_OP_QLINEAR_MATMUL, 8, 1);
    pq_tensor *in[8] = {T(PQ_DTYPE_U8, 2, D(2, 3), qmm_a),  T(PQ_DTYPE_F32, 0, NULL, V(0.02)),
                        T(PQ_DTYPE_U8, 0, NULL, V(113)),    T(PQ_DTYPE_U8, 2, D(3, 4), qmm_b),
                        T(PQ_DTYPE_F32, 0, NULL, V(0.015)), T(PQ_DTYPE_U8, 0, NULL, V(98)),
                        T(PQ_DTYPE_F32, 0, NULL, V(0.05)),  T(PQ_DTYPE_U8, 0, NULL, V(120))};
    run1(in, 8, PQ_DTYPE_U8, 2, D(2, 4), qmm_y, 0);
    mk_node(PQ_OP_QLINEAR_MATMUL, 8, 1);
    pq_tensor *bad[8] = {T(PQ_DTYPE_U8, 2, D(2, 3), NULL), T(PQ_DTYPE_F32, 0, NULL, V(1)),
                         T(PQ_DTYPE_U8, 0, NULL, NULL),    T(PQ_DTYPE_U8, 2, D(4, 4), NULL),
                         T(PQ_DTYPE_F32, 0, NULL, V(1)),   T(PQ_DTYPE_U8, 0, NULL, NULL),
                         T(PQ_DTYPE_F32, 0, NULL, V(1)),   T(PQ_DTYPE_U8, 0, NULL, NULL)};
    run_fail(bad, 8, PQ_ERR_INVALID);
}

Test(ref_extra, qlinear_conv_bias_per_channel) {
    mk_node(PQ_OP_QLINEAR_CONV, 9, 1);
    set_ints("pads", D(1, 1, 1, 1), 4);
    pq_tensor *in[9] = {
        T(PQ_DTYPE_I8, 4, D(1, 2, 3, 3), qc_x),  T(PQ_DTYPE_F32, 0, NULL, V(0.03)),
        T(PQ_DTYPE_I8, 0, NULL, V(-5)),          T(PQ_DTYPE_I8, 4, D(2, 2, 2, 2), qc_w),
        T(PQ_DTYPE_F32, 1, D(2), V(0.01, 0.02)), T(PQ_DTYPE_I8, 1, D(2), V(0, 0)),
        T(PQ_DTYPE_F32, 0, NULL, V(0.2)),        T(PQ_DTYPE_I8, 0, NULL, V(3)),
        T(PQ_DTYPE_I32, 1, D(2), V(100, -250))};
    run1(in, 9, PQ_DTYPE_I8, 4, D(1, 2, 4, 4), qc_y, 0);
}

/* ---- GridSample ---- */

static void grid_case(const char *mode, const char *pad, int align, const double *want) {
    mk_node(PQ_OP_GRID_SAMPLE, 2, 1);
    set_str("mode", mode);
    set_str("padding_mode", pad);
    set_int("align_corners", align);
    pq_tensor *in[2] = {T(PQ_DTYPE_F32, 4, D(1, 2, 3, 4), gs_x),
                        T(PQ_DTYPE_F32, 4, D(1, 2, 3, 2), gs_grid)};
    run1(in, 2, PQ_DTYPE_F32, 4, D(1, 2, 2, 3), want, 1e-5);
}

Test(ref_extra, grid_sample_modes_vs_torch) {
    grid_case("bilinear", "zeros", 0, gs_bilinear_zeros_0);
    grid_case("nearest", "border", 1, gs_nearest_border_1);
    grid_case("bicubic", "reflection", 0, gs_bicubic_reflection_0);
    grid_case("bilinear", "reflection", 1, gs_bilinear_reflection_1);
    grid_case("bicubic", "border", 1, gs_bicubic_border_1);
    mk_node(PQ_OP_GRID_SAMPLE, 2, 1);
    set_str("mode", "area");
    pq_tensor *bad[2] = {T(PQ_DTYPE_F32, 4, D(1, 2, 3, 4), NULL),
                         T(PQ_DTYPE_F32, 4, D(1, 2, 3, 2), NULL)};
    run_fail(bad, 2, PQ_ERR_INVALID);
}

/* ---- a planned (preallocated) output is used in place; a wrongly planned one is INTERNAL ---- */

Test(ref_extra, planned_output_buffers) {
    mk_node(PQ_OP_COSH, 1, 1);
    pq_tensor *in[1] = {T(PQ_DTYPE_F32, 1, D(5), V(-0.9, -0.3, 0, 0.4, 0.8))};
    pq_tensor *o = T(PQ_DTYPE_F32, 1, D(5), V(-7, -7, -7, -7, -7));
    void *buf = o->data;
    cr_assert_eq(run(in, 1, &o, 1), PQ_OK, "%s", err.msg);
    cr_assert_eq(o->data, buf);
    expect(o, PQ_DTYPE_F32, 1, D(5), u_cosh, 1e-6);
    pq_tensor_destroy(o);
    pq_tensor *wrong = T(PQ_DTYPE_F32, 1, D(4), NULL);
    cr_assert_eq(run(in, 1, &wrong, 1), PQ_ERR_INTERNAL);
    pq_tensor_destroy(wrong);
    /* a missing output is INVALID, not a crash */
    pq_tensor *none = NULL;
    cr_assert_eq(run(in, 1, &none, 1), PQ_ERR_INVALID);
    pq_tensor_destroy(in[0]);
}

/* ---- hostile inputs give a status, never a crash or a hang ---- */

Test(ref_extra, hostile_inputs) {
    /* an Einsum whose loop nest would have 2^44 points */
    mk_node(PQ_OP_EINSUM, 4, 1);
    set_str("equation", "a,b,c,d->");
    pq_tensor *e[4] = {T(PQ_DTYPE_F32, 1, D(2048), NULL), T(PQ_DTYPE_F32, 1, D(2048), NULL),
                       T(PQ_DTYPE_F32, 1, D(2048), NULL), T(PQ_DTYPE_F32, 1, D(2048), NULL)};
    run_fail(e, 4, PQ_ERR_UNSUPPORTED);
    /* MaxUnpool whose pads leave no default unpooled shape, with an output_shape */
    mk_node(PQ_OP_MAX_UNPOOL, 3, 1);
    set_ints("kernel_shape", D(1, 1), 2);
    set_ints("pads", D(3, 3, 3, 3), 4);
    pq_tensor *m[3] = {T(PQ_DTYPE_F32, 4, D(1, 1, 2, 2), NULL),
                       T(PQ_DTYPE_I64, 4, D(1, 1, 2, 2), NULL),
                       T(PQ_DTYPE_I64, 1, D(4), V(1, 1, 4, 4))};
    run_fail(m, 3, PQ_ERR_INVALID);
    /* GridSample with NaN, infinite and huge coordinates in every padding mode */
    const char *pads[3] = {"zeros", "border", "reflection"};
    const char *modes[3] = {"nearest", "bilinear", "bicubic"};
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < 3; k++) {
            mk_node(PQ_OP_GRID_SAMPLE, 2, 1);
            set_str("mode", modes[k]);
            set_str("padding_mode", pads[p]);
            pq_tensor *in[2] = {
                T(PQ_DTYPE_F32, 4, D(1, 1, 2, 2), NULL),
                T(PQ_DTYPE_F32, 4, D(1, 1, 3, 2), V(NAN, 0, INFINITY, -INFINITY, 1e30, -3e38))};
            pq_tensor *o = shell();
            cr_assert_eq(run(in, 2, &o, 1), PQ_OK, "%s", err.msg);
            pq_tensor_destroy(o);
            free_all(in, 2);
        }
}
