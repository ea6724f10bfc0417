/* model_file.c -- the model file: the little-endian writer and reader the
 * kinds' save/load share (model_int.h), load-time value checks, and
 * rs_model_save / _load / _peek and their in-memory forms (layout
 * below).  The state of rs_model_t is in model_priv.h; the "seq" body
 * is rs_seq_serialize / rs_seq_deserialize (seq.c). */
#define _GNU_SOURCE
#include "model/model_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RS_MODEL_MAGIC       "RSMODEL\0"
#define RS_MODEL_FORMAT      2u /* 2 added the weight average */
#define RS_MODEL_FORMAT_MIN  1u /* format 1 files load without it  */
#define RS_MODEL_HDR_LEN     20   /* magic 8 + format 4 + payload length 8 */
#define RS_MODEL_FILE_MAX    (1u << 30)
/* Largest |weight| a loaded "lr" file may hold: 8 * (RS_MODEL_DIM_MAX + 1)
 * * 1e30 < FLT_MAX, so no logit of the float forward overflows. */
#define RS_LR_W_MAX          1e30

/* ------------------------------------------------------------ save/load */

/* Little-endian writer (model_int.h; cold path: may allocate). */
void rs_wb_put(rs_wbuf_t *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->p = rs_realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void rs_wb_u64(rs_wbuf_t *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    rs_wb_put(b, x, 8);
}

void rs_wb_u32(rs_wbuf_t *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    rs_wb_put(b, x, 4);
}

void rs_wb_f64(rs_wbuf_t *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    rs_wb_u64(b, u);
}

void rs_wb_str(rs_wbuf_t *b, const char *s) {
    size_t n = strlen(s);
    rs_wb_u32(b, (uint32_t)n);
    rs_wb_put(b, s, n);
}

const uint8_t *rs_rb_take(rs_rbuf_t *b, size_t n) {
    if (b->bad || n > b->len - b->off) {
        b->bad = 1;
        return NULL;
    }
    const uint8_t *p = b->p + b->off;
    b->off += n;
    return p;
}

uint64_t rs_rb_u64(rs_rbuf_t *b) {
    const uint8_t *x = rs_rb_take(b, 8);
    uint64_t v = 0;
    if (x)
        for (int i = 0; i < 8; i++) v |= (uint64_t)x[i] << (8 * i);
    return v;
}

uint32_t rs_rb_u32(rs_rbuf_t *b) {
    const uint8_t *x = rs_rb_take(b, 4);
    uint32_t v = 0;
    if (x)
        for (int i = 0; i < 4; i++) v |= (uint32_t)x[i] << (8 * i);
    return v;
}

double rs_rb_f64(rs_rbuf_t *b) {
    uint64_t u = rs_rb_u64(b);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* Read a string of at most max-1 bytes into dst. */
void rs_rb_str(rs_rbuf_t *b, char *dst, size_t max) {
    uint32_t n = rs_rb_u32(b);
    if (b->bad || n >= max) {
        b->bad = 1;
        dst[0] = '\0';
        return;
    }
    const uint8_t *s = rs_rb_take(b, n);
    if (!s) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ---------------------------------------------- load-time value checks */

rs_err_t rs_model_check_f64s(const char *field, const double *v, size_t n,
                             double lo, double hi, char *errstr,
                             size_t errstr_size) {
    for (size_t i = 0; i < n; i++)
        if (!(v[i] >= lo && v[i] <= hi))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "%s[%zu] = %g is outside [%g, %g]", field, i, v[i],
                           lo, hi);
    return RS_OK;
}

rs_err_t rs_model_check_f32s(const char *field, const float *v, size_t n,
                             double lo, double hi, char *errstr,
                             size_t errstr_size) {
    for (size_t i = 0; i < n; i++)
        if (!((double)v[i] >= lo && (double)v[i] <= hi))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "%s[%zu] = %g is outside [%g, %g]", field, i,
                           (double)v[i], lo, hi);
    return RS_OK;
}

rs_err_t rs_model_check_std(const double *mean, const double *m2, int dim,
                            uint64_t nobs, char *errstr, size_t errstr_size) {
    rs_err_t err = rs_model_check_f64s("standardiser mean", mean, (size_t)dim,
                                       -FLT_MAX, FLT_MAX, errstr, errstr_size);
    if (err) return err;
    const double n = nobs > 1 ? (double)nobs : 1.0;
    const double vmax = RS_MODEL_STD_MAX * RS_MODEL_STD_MAX;
    for (int i = 0; i < dim; i++)
        if (!(m2[i] >= 0 && m2[i] / n <= vmax))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "standardiser m2[%d] = %g over %llu observations "
                           "is not a variance in [0, %g]",
                           i, m2[i], (unsigned long long)nobs, vmax);
    return RS_OK;
}

/* File layout (all little-endian):
 *   magic "RSMODEL\0" | u32 format | u64 payload length | payload | u32
 *   rs_checksum32(everything before it)
 * payload: str kind | u32 dim | u32 conf hash | f64 lr, l2, pos_weight,
 *   grad_clip | i64 label_horizon (-1 auto), 0 (was pending_max),
 *   publish_every, batch_max |
 *   u64 updates, positives, negatives, horizon_negatives, vstep (bit 63:
 *   the number was set by rs_model_set_version), adam_t,
 *   nobs | str name[dim] | f64 mean[dim], m2[dim] | f64 w[dim+1],
 *   am[dim+1], av[dim+1]
 * kind "seq": str "seq" | u32 dim | str name[dim] | the body of
 *   rs_seq_serialize (seq.c) */
static void rs_model_serialize(const rs_model_t *m, rs_wbuf_t *b) {
    rs_wb_put(b, RS_MODEL_MAGIC, 8);
    rs_wb_u32(b, RS_MODEL_FORMAT);
    rs_wb_u64(b, 0); /* payload length, patched below */
    size_t p0 = b->len;
    if (m->seq) {
        rs_wb_str(b, "seq");
        rs_wb_u32(b, (uint32_t)m->dim);
        for (int i = 0; i < m->dim; i++) rs_wb_str(b, m->names[i]);
        rs_seq_serialize(m->seq, b);
        uint64_t plen = b->len - p0;
        for (int i = 0; i < 8; i++) b->p[12 + i] = (uint8_t)(plen >> (8 * i));
        rs_wb_u32(b, rs_checksum32(b->p, b->len, 0));
        return;
    }
    rs_wb_str(b, "lr");
    rs_wb_u32(b, (uint32_t)m->dim);
    rs_wb_u32(b, m->conf_hash);
    rs_wb_f64(b, m->conf.learning_rate);
    rs_wb_f64(b, m->conf.l2);
    rs_wb_f64(b, m->conf.pos_weight);
    rs_wb_f64(b, m->conf.grad_clip);
    rs_wb_u64(b, (uint64_t)m->conf.label_horizon);
    /* was pending_max: now the standardiser's newest observation time
     * and transform, (t << 1) | symlog (0 in older files: none) */
    rs_wb_u64(b, ((uint64_t)m->std_tlast << 1) | (uint64_t)(m->conf.transform & 1));
    rs_wb_u64(b, (uint64_t)m->conf.publish_every);
    rs_wb_u64(b, (uint64_t)m->conf.batch_max);
    rs_wb_u64(b, m->updates);
    rs_wb_u64(b, m->positives);
    rs_wb_u64(b, m->negatives);
    rs_wb_u64(b, m->horizon_negatives);
    rs_wb_u64(b, m->vstep | (m->vnamed ? RS_VNAMED_BIT : 0));
    rs_wb_u64(b, m->adam_t);
    rs_wb_u64(b, m->nobs);
    for (int i = 0; i < m->dim; i++) rs_wb_str(b, m->names[i]);
    for (int i = 0; i < m->dim; i++) rs_wb_f64(b, m->mean[i]);
    for (int i = 0; i < m->dim; i++) rs_wb_f64(b, m->m2[i]);
    for (int i = 0; i <= m->dim; i++) rs_wb_f64(b, m->w[i]);
    for (int i = 0; i <= m->dim; i++) rs_wb_f64(b, m->am[i]);
    for (int i = 0; i <= m->dim; i++) rs_wb_f64(b, m->av[i]);
    /* format 2: the weight average (model.average) */
    rs_wb_u64(b, m->avn);
    rs_wb_u64(b, (uint64_t)m->avt);
    for (int i = 0; i <= m->dim; i++) rs_wb_f64(b, m->wa[i]);
    uint64_t plen = b->len - p0;
    for (int i = 0; i < 8; i++) b->p[12 + i] = (uint8_t)(plen >> (8 * i));
    rs_wb_u32(b, rs_checksum32(b->p, b->len, 0));
}

static rs_err_t rs_write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return RS_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return RS_OK;
}

rs_err_t rs_model_save(const rs_model_t *m, const char *path, char *errstr,
                       size_t errstr_size) {
    rs_wbuf_t b = {0};
    rs_err_t err = RS_OK;
    size_t plen = strlen(path);
    char *tmp = rs_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int fd = -1;

    rs_model_serialize(m, &b);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO, "model save: open %s: %s",
                      tmp, strerror(errno));
        goto done;
    }
    if (rs_write_all(fd, b.p, b.len) || fsync(fd)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                      "model save: write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd)) {
        fd = -1;
        err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                      "model save: close %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                      "model save: rename %s -> %s: %s", tmp, path,
                      strerror(errno));
        goto done;
    }
    /* make the rename itself durable */
    {
        char *dcopy = rs_strdup(path);
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        rs_free(dcopy);
    }
done:
    if (fd >= 0) close(fd);
    if (err) unlink(tmp);
    rs_free(tmp);
    rs_free(b.p);
    return err;
}

static rs_err_t rs_model_read_file(const char *path, uint8_t **bufp,
                                   size_t *lenp, char *errstr,
                                   size_t errstr_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "model %s: %s", path,
                       strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rs_errf(errstr, errstr_size, RS_ERR_IO,
                       "model %s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > RS_MODEL_FILE_MAX) {
        close(fd);
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "model %s: %lld bytes is larger than any model",
                       path, (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = rs_malloc(len ? len : 1);
    size_t off = 0;
    while (off < len) {
        ssize_t r = read(fd, buf + off, len - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            rs_free(buf);
            return rs_errf(errstr, errstr_size, RS_ERR_IO, "model %s: read: %s",
                           path, strerror(e));
        }
        off += (size_t)r;
    }
    close(fd);
    *bufp = buf;
    *lenp = len;
    return RS_OK;
}

rs_err_t rs_model_peek(const uint8_t *buf, size_t len, uint64_t *updates,
                       uint64_t *vstep) {
    if (len < RS_MODEL_HDR_LEN)
        return len >= 8 && memcmp(buf, RS_MODEL_MAGIC, 8) ? RS_ERR_CORRUPT
                                                           : RS_ERR_AGAIN;
    if (memcmp(buf, RS_MODEL_MAGIC, 8)) return RS_ERR_CORRUPT;
    rs_rbuf_t rb = {.p = buf, .len = len, .off = 8};
    uint32_t fmt = rs_rb_u32(&rb);
    if (fmt < RS_MODEL_FORMAT_MIN || fmt > RS_MODEL_FORMAT) return RS_ERR_CORRUPT;
    rs_rb_u64(&rb); /* payload length */
    char kind[16];
    rs_rb_str(&rb, kind, sizeof(kind));
    uint32_t dim = rs_rb_u32(&rb);
    if (rb.bad) return RS_ERR_AGAIN;
    if (dim < 1 || dim > RS_MODEL_DIM_MAX) return RS_ERR_CORRUPT;
    if (!strcmp(kind, "seq")) {
        char name[RS_MODEL_NAME_MAX];
        for (uint32_t i = 0; i < dim && !rb.bad; i++)
            rs_rb_str(&rb, name, sizeof(name));
        rs_seq_peek(&rb, updates, vstep);
    } else if (!strcmp(kind, "lr")) {
        /* conf hash, 4 f64 and 4 i64 of config, then the counters */
        rs_rb_take(&rb, 4 + 8 * 8);
        *updates = rs_rb_u64(&rb);
        for (int i = 0; i < 3; i++) rs_rb_u64(&rb);
        *vstep = rs_rb_u64(&rb);
    } else {
        return RS_ERR_CORRUPT;
    }
    return rb.bad ? RS_ERR_AGAIN : RS_OK;
}

rs_err_t rs_model_load(const char *path, const rs_model_conf_t *conf,
                       rs_model_t **mp, char *errstr, size_t errstr_size) {
    uint8_t *buf = NULL;
    size_t len = 0;
    rs_err_t err;

    *mp = NULL;
    if ((err = rs_model_read_file(path, &buf, &len, errstr, errstr_size)))
        return err;
    err = rs_model_load_mem(buf, len, path, conf, mp, errstr, errstr_size);
    rs_free(buf);
    return err;
}

rs_err_t rs_model_save_mem(const rs_model_t *m, uint8_t **buf, size_t *len) {
    rs_wbuf_t b = {0};
    rs_model_serialize(m, &b);
    *buf = b.p;
    *len = b.len;
    return RS_OK;
}

rs_err_t rs_model_load_mem(const void *data, size_t len, const char *path,
                           const rs_model_conf_t *conf, rs_model_t **mp,
                           char *errstr, size_t errstr_size) {
    const uint8_t *buf = data;
    rs_model_t *m = NULL;
    char (*names)[RS_MODEL_NAME_MAX] = NULL;
    const char **nameps = NULL;
    rs_err_t err;

    *mp = NULL;
    if (!path) path = "(buffer)";
    if (!buf && len) return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                                    "model %s: no bytes", path);
    if (len > RS_MODEL_FILE_MAX)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "model %s: %zu bytes is larger than any model", path,
                       len);

    /* envelope: magic, format, length, checksum */
    if (len < 8 || memcmp(buf, RS_MODEL_MAGIC, 8)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: not a riskstream model file (bad magic)", path);
        goto done;
    }
    rs_rbuf_t rb = {.p = buf, .len = len, .off = 8};
    uint32_t fmt = rs_rb_u32(&rb);
    uint64_t plen = rs_rb_u64(&rb);
    if (rb.bad) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: truncated header (%zu bytes)", path, len);
        goto done;
    }
    if (fmt < RS_MODEL_FORMAT_MIN || fmt > RS_MODEL_FORMAT) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: format version %u is not supported (this "
                      "build reads %u to %u)",
                      path, fmt, RS_MODEL_FORMAT_MIN, RS_MODEL_FORMAT);
        goto done;
    }
    if (plen > RS_MODEL_FILE_MAX || len < RS_MODEL_HDR_LEN + plen + 4) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: truncated: %zu bytes, the header announces "
                      "%llu",
                      path, len, (unsigned long long)(RS_MODEL_HDR_LEN + plen + 4));
        goto done;
    }
    if (len > RS_MODEL_HDR_LEN + plen + 4) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: %zu unexpected bytes after the model", path,
                      len - (size_t)(RS_MODEL_HDR_LEN + plen + 4));
        goto done;
    }
    size_t body = RS_MODEL_HDR_LEN + (size_t)plen;
    uint32_t want = (uint32_t)buf[body] | (uint32_t)buf[body + 1] << 8 |
                    (uint32_t)buf[body + 2] << 16 | (uint32_t)buf[body + 3] << 24;
    uint32_t got = rs_checksum32(buf, body, 0);
    if (want != got) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: checksum mismatch (stored %08x, computed "
                      "%08x): the file is damaged",
                      path, want, got);
        goto done;
    }

    /* payload */
    rb.len = body;
    char kind[16];
    rs_rb_str(&rb, kind, sizeof(kind));
    uint32_t dim = rs_rb_u32(&rb);
    char e2[256];
    if (!rb.bad && !strcmp(kind, "seq")) {
        if (dim < 1 || dim > RS_MODEL_DIM_MAX) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                          "model %s: bad dimension %u", path, dim);
            goto done;
        }
        /* each name is at least its length: allocate names for no more
         * than the file holds (the body is checked by rs_seq_deserialize
         * before it allocates) */
        if ((uint64_t)dim * 4 > rb.len - rb.off) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                          "model %s: truncated: %zu bytes cannot hold the "
                          "names of %u features",
                          path, rb.len - rb.off, dim);
            goto done;
        }
        names = rs_calloc(dim, sizeof(*names));
        nameps = rs_calloc(dim, sizeof(*nameps));
        for (uint32_t i = 0; i < dim; i++) {
            rs_rb_str(&rb, names[i], RS_MODEL_NAME_MAX);
            nameps[i] = names[i];
        }
        if (rb.bad) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                          "model %s: bad feature names", path);
            goto done;
        }
        rs_seq_t *sq = NULL;
        err = rs_seq_deserialize(&rb, (int)fmt, conf, (int)dim,
                                 rs_model_names_hash((int)dim, nameps), &sq,
                                 e2, sizeof(e2));
        if (err) {
            err = rs_errf(errstr, errstr_size, err, "model %s: %s", path, e2);
            goto done;
        }
        m = rs_calloc(1, sizeof(*m));
        m->dim = (int)dim;
        m->seq = sq;
        m->names = names;
        names = NULL;
        err = RS_OK;
        goto done;
    }
    uint32_t chash = rs_rb_u32(&rb);
    rs_model_conf_t saved;
    rs_model_conf_init(&saved);
    saved.learning_rate = rs_rb_f64(&rb);
    saved.l2 = rs_rb_f64(&rb);
    saved.pos_weight = rs_rb_f64(&rb);
    saved.grad_clip = rs_rb_f64(&rb);
    saved.label_horizon = (int64_t)rs_rb_u64(&rb);
    uint64_t stdw = rs_rb_u64(&rb); /* (t_last << 1) | symlog, see save */
    saved.transform = (int)(stdw & 1);
    saved.publish_every = (int64_t)rs_rb_u64(&rb);
    saved.batch_max = (int64_t)rs_rb_u64(&rb);
    uint64_t cnt[7];
    for (int i = 0; i < 7; i++) cnt[i] = rs_rb_u64(&rb);
    if (rb.bad || strcmp(kind, "lr") || dim < 1 || dim > RS_MODEL_DIM_MAX) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: unsupported kind '%s' or bad dimension %u",
                      path, kind, dim);
        goto done;
    }
    /* What the file must still hold: dim names (at least their lengths),
     * then mean, m2 [dim] and w, am, av [dim + 1] (f64).  Checked before
     * anything is allocated for dim, exactly once the names are read. */
    const uint64_t arrays = 8 * (5 * (uint64_t)dim + 3) +
                            (fmt >= 2 ? 16 + 8 * ((uint64_t)dim + 1) : 0);
    if ((uint64_t)dim * 4 + arrays > rb.len - rb.off) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: truncated: %zu bytes cannot hold the names "
                      "and parameters of %u features",
                      path, rb.len - rb.off, dim);
        goto done;
    }
    names = rs_calloc(dim, sizeof(*names));
    nameps = rs_calloc(dim, sizeof(*nameps));
    for (uint32_t i = 0; i < dim; i++) {
        rs_rb_str(&rb, names[i], RS_MODEL_NAME_MAX);
        nameps[i] = names[i];
    }
    if (rb.bad) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: bad feature names", path);
        goto done;
    }
    if (rb.len - rb.off != arrays) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: payload size does not match dimension %u "
                      "(%zu bytes of parameters, %llu expected)",
                      path, dim, rb.len - rb.off, (unsigned long long)arrays);
        goto done;
    }
    rs_model_conf_t use = conf ? *conf : saved;
    use.kind = RS_MODEL_LR; /* the file's kind and transform win */
    use.transform = saved.transform;
    m = rs_model_new(&use, (int)dim, nameps, e2, sizeof(e2));
    if (!m) {
        err = rs_errf(errstr, errstr_size, conf ? RS_ERR_CONFIG : RS_ERR_CORRUPT,
                      "model %s: %s", path, e2);
        goto done;
    }
    for (uint32_t i = 0; i < dim; i++) m->mean[i] = rs_rb_f64(&rb);
    for (uint32_t i = 0; i < dim; i++) m->m2[i] = rs_rb_f64(&rb);
    for (uint32_t i = 0; i <= dim; i++) m->w[i] = rs_rb_f64(&rb);
    for (uint32_t i = 0; i <= dim; i++) m->am[i] = rs_rb_f64(&rb);
    for (uint32_t i = 0; i <= dim; i++) m->av[i] = rs_rb_f64(&rb);
    if (fmt >= 2) { /* the weight average */
        m->avn = rs_rb_u64(&rb);
        m->avt = (int64_t)rs_rb_u64(&rb);
        for (uint32_t i = 0; i <= dim; i++) m->wa[i] = rs_rb_f64(&rb);
    }
    if (rb.bad || rb.off != rb.len) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "model %s: payload size does not match dimension %u",
                      path, dim);
        goto done;
    }
    /* Values no "lr" model reaches.  Weights: |logit| <= |b| + 8 sum|w_i|
     * (|z| <= RS_MODEL_Z_CLIP) stays below FLT_MAX for any dim, so the
     * float forward is finite; a trained weight is many orders smaller.
     * Adam moments: averages of gradients clipped to grad_clip (and of
     * their squares), bounded by the table's largest grad_clip (x 2 for
     * rounding). */
    const double gmax = 2 * rs_model_conf_max("grad_clip");
    if ((err = rs_model_check_std(m->mean, m->m2, (int)dim, cnt[6], e2,
                                  sizeof(e2))) ||
        (err = rs_model_check_f64s("weight w", m->w, (size_t)dim + 1,
                                   -RS_LR_W_MAX, RS_LR_W_MAX, e2, sizeof(e2))) ||
        (err = rs_model_check_f64s("average weight", m->wa, (size_t)dim + 1,
                                   -RS_LR_W_MAX, RS_LR_W_MAX, e2, sizeof(e2))) ||
        (err = rs_model_check_f64s("adam moment m", m->am, (size_t)dim + 1,
                                   -gmax, gmax, e2, sizeof(e2))) ||
        (err = rs_model_check_f64s("adam moment v", m->av, (size_t)dim + 1, 0,
                                   gmax * gmax, e2, sizeof(e2)))) {
        err = rs_errf(errstr, errstr_size, err, "model %s: %s", path, e2);
        goto done;
    }
    m->updates = cnt[0];
    m->positives = cnt[1];
    m->negatives = cnt[2];
    m->horizon_negatives = cnt[3];
    m->vstep = cnt[4] & ~RS_VNAMED_BIT;
    m->vnamed = (cnt[4] & RS_VNAMED_BIT) != 0;
    m->adam_t = cnt[5];
    m->nobs = cnt[6];
    m->std_tlast = (int64_t)(stdw >> 1);
    m->conf_hash = chash;
    rs_model_refresh_std(m);
    rs_model_refresh_w(m);
    rs_model_name_version(m);
    err = RS_OK;

done:
    if (err) {
        rs_model_destroy(m);
        m = NULL;
    }
    *mp = m;
    rs_free(names);
    rs_free(nameps);
    return err;
}
