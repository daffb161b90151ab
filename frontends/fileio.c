/* Bounded whole-file reads and atomic writes (mkstemp next to the target, fsync, rename) used by
 * the .npy and .pir frontends. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/alloc.h"

enum pq_status pq_file_read_all(const char *path, size_t max_bytes, unsigned char **out,
                                size_t *len, pq_error *err) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pq_error_set(err, PQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return pq_error_set(err, PQ_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        return pq_error_set(err, PQ_ERR_INVALID, "'%s' is not a regular file", path);
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        fclose(f);
        return pq_error_set(err, PQ_ERR_INVALID, "'%s' is too large (%lld bytes, limit %zu)", path,
                            (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = pq_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return pq_error_nomem(err, path);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (got != n || bad) {
        pq_free(buf);
        return pq_error_set(err, PQ_ERR_IO, "cannot read '%s' (got %zu of %zu bytes)", path, got,
                            n);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return PQ_OK;
}

static void pq_atomic_release(pq_atomic_file *af) {
    pq_free(af->path);
    pq_free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    af->f = NULL;
}

enum pq_status pq_atomic_open(pq_atomic_file *af, const char *path, pq_error *err) {
    memset(af, 0, sizeof *af);
    /* the rename at commit would replace a device, FIFO or directory entry (as root: /dev/null) */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return pq_error_set(err, PQ_ERR_IO,
                            "'%s' exists and is not a regular file: piqc writes a new file and "
                            "renames it into place, so it will not replace it",
                            path);
    size_t pl = strlen(path);
    af->path = pq_strdup(path);
    af->tmp_path = pq_malloc(pl + 12);
    if (!af->path || !af->tmp_path) {
        pq_atomic_release(af);
        return pq_error_nomem(err, path);
    }
    memcpy(af->tmp_path, path, pl);
    memcpy(af->tmp_path + pl, ".tmpXXXXXX", 11);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        pq_atomic_release(af);
        return pq_error_set(err, PQ_ERR_IO, "cannot create a temporary file for '%s': %s", path,
                            strerror(e));
    }
    /* mkstemp creates mode 0600; give the result the usual 0666 minus the umask */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        pq_atomic_release(af);
        return pq_error_set(err, PQ_ERR_IO, "cannot open a temporary file for '%s': %s", path,
                            strerror(e));
    }
    return PQ_OK;
}

enum pq_status pq_atomic_write(pq_atomic_file *af, const void *data, size_t n, pq_error *err) {
    if (!af->f) return pq_error_set(err, PQ_ERR_INTERNAL, "write to a closed atomic file");
    if (n && fwrite(data, 1, n, af->f) != n)
        return pq_error_set(err, PQ_ERR_IO, "cannot write '%s': %s", af->path, strerror(errno));
    return PQ_OK;
}

/* fsync of the directory holding path, so the rename itself is durable (best effort). */
static void pq_sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? pq_malloc((size_t)(slash - path) + 2) : pq_strdup(".");
    if (!dir) return;
    if (slash) {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, dl);
        dir[dl] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    pq_free(dir);
}

enum pq_status pq_atomic_commit(pq_atomic_file *af, pq_error *err) {
    if (!af->f) return pq_error_set(err, PQ_ERR_INTERNAL, "commit of a closed atomic file");
    int e = 0;
    if (fflush(af->f) != 0) e = errno ? errno : EIO;
    if (!e && fsync(fileno(af->f)) != 0) e = errno ? errno : EIO;
    if (fclose(af->f) != 0 && !e) e = errno ? errno : EIO;
    af->f = NULL;
    if (!e && rename(af->tmp_path, af->path) != 0) e = errno ? errno : EIO;
    if (e) {
        unlink(af->tmp_path);
        enum pq_status st =
            pq_error_set(err, PQ_ERR_IO, "cannot write '%s': %s", af->path, strerror(e));
        pq_atomic_release(af);
        return st;
    }
    pq_sync_dir(af->path);
    pq_atomic_release(af);
    return PQ_OK;
}

void pq_atomic_abort(pq_atomic_file *af) {
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
    }
    if (af->tmp_path) unlink(af->tmp_path);
    pq_atomic_release(af);
}
