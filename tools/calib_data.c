/* Calibration-data directory loading: reads <input>.npy per model input, checks the sample
 * axis, and hashes the files' bytes with SHA-256 (OpenSSL) for provenance. */
#include "calib_data.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "frontends/frontends.h"

void pq_calib_files_free(pq_calib_files *cf) {
    for (uint32_t i = 0; i < cf->set.n; i++)
        if (cf->set.inputs) pq_tensor_destroy(cf->set.inputs[i]);
    pq_free(cf->set.inputs);
    memset(cf, 0, sizeof *cf);
}

enum pq_status pq_calib_files_load(const pq_graph *g, const char *dir, pq_calib_files *cf,
                                   pq_error *err) {
    memset(cf, 0, sizeof *cf);
    pq_calib_set *cs = &cf->set;
    cs->n = g->n_inputs;
    cs->inputs = pq_calloc(g->n_inputs + 1, sizeof *cs->inputs);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum pq_status st = PQ_OK;
    if (!cs->inputs || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        st = pq_error_nomem(err, "calibration set");
        goto done;
    }
    for (uint32_t i = 0; i < g->n_inputs && st == PQ_OK; i++) {
        char base[256], path[4096];
        pq_cli_sanitize_name(g->values[g->inputs[i]].name, base, sizeof base);
        snprintf(path, sizeof path, "%s/%s.npy", dir, base);
        unsigned char *bytes = NULL;
        size_t len = 0;
        st = pq_file_read_all(path, (size_t)1 << 34, &bytes, &len, err);
        if (st == PQ_ERR_IO)
            pq_error_prefix(err, "calibration data (one <input name>.npy per model input): ");
        if (st != PQ_OK) break;
        EVP_DigestUpdate(md, bytes, len);
        st = pq_npy_read_buffer(bytes, len, path, &cs->inputs[i], err);
        pq_free(bytes);
        if (st != PQ_OK) break;
        const pq_tensor *t = cs->inputs[i];
        if (t->rank < 1 || t->dims[0] < 1) {
            st = pq_error_set(err, PQ_ERR_INVALID, "calibration data '%s': needs a sample axis 0",
                              path);
        } else if (i == 0) {
            cs->samples = t->dims[0];
        } else if (t->dims[0] != cs->samples) {
            st = pq_error_set(err, PQ_ERR_INVALID,
                              "calibration data '%s': %lld samples, but the first input has %lld",
                              path, (long long)t->dims[0], (long long)cs->samples);
        }
    }
    if (st == PQ_OK) {
        unsigned char h[32];
        unsigned int hl = 0;
        EVP_DigestFinal_ex(md, h, &hl);
        for (int k = 0; k < 32; k++)
            snprintf(cf->sha256 + 2 * k, 3, "%02x", h[k]);
    }
done:
    EVP_MD_CTX_free(md);
    if (st != PQ_OK) pq_calib_files_free(cf);
    return st;
}
