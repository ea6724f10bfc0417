/* proto_jsonr.c -- the event and label JSON decoders: streaming, no
 * allocation, no strtod.
 *
 * These are on the per-event path (every message of the events and labels
 * topics); jansson built a tree per message (malloc per value, a hash
 * table per object) and parsed numbers with strtod.  Here:
 *
 *   pass 1  one left-to-right scan validates the whole message as RFC 8259
 *           JSON exactly as strictly as jansson did (UTF-8, escapes,
 *           surrogate pairs, no \u0000, no control characters, integers
 *           that fit an int64, reals that do not overflow, nesting depth
 *           <= 2048, nothing after the top-level value) and, for the keys
 *           of the top-level object that the record knows, remembers the
 *           value as a token (kind, text span, number value): the last
 *           occurrence of a key wins, as it did with jansson;
 *   pass 2  the fields are read from their tokens in the same order and
 *           with the same getters, leniency and messages as the jansson
 *           decoder (proto_json.c, which keeps the score and foreign-line
 *           decoders): "field 'numeric_fields[2].value': expected number".
 *           Containers (numeric_fields, categorical_fields) are walked
 *           again within their span; strings are unescaped straight into
 *           the record's fixed buffers.
 *
 * Numbers: an integer token (no '.', no exponent) is an int64 as in
 * jansson; a real is read by rs_parse_f64 (common/fmt.h), bit-identical to
 * strtod.  The jansson decoders stay available as
 * rs_event_from_json_jansson / rs_label_from_json_jansson (proto_int.h):
 * tests/proto and tests/fuzz/fuzz_event_json check that both give the same
 * record or both refuse.  Only the wording of syntax errors differs
 * ("invalid JSON at line L column C: <reason>" either way).
 *
 * Threads: reentrant; all state lives on the caller's stack (about 1 KB).
 */
#include "proto/proto.h"
#include "proto/proto_int.h"
#include "common/fmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JR_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

enum { JT_NONE = 0, JT_NULL, JT_TRUE, JT_FALSE, JT_INT, JT_REAL, JT_STR,
       JT_ARR, JT_OBJ };

/* A value of pass 1.  STR: p/len = the text between the quotes, slen =
 * decoded length, esc = has escapes.  ARR/OBJ: p/len = the whole text
 * including the brackets.  Numbers: i / d. */
typedef struct jv_s {
    int type;
    int esc;
    const char *p;
    size_t len, slen;
    int64_t i;
    double d;
} jv_t;

typedef struct jr_s {
    const char *s;
    size_t n, pos;
    const char *why;  /* syntax error, NULL if none */
    size_t why_pos;
} jr_t;

static int jr_fail(jr_t *r, const char *why) {
    if (!r->why) {
        r->why = why;
        r->why_pos = r->pos;
    }
    return -1;
}

static void jr_ws_run(jr_t *r) {
    while (r->pos < r->n) {
        char c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        r->pos++;
    }
}

/* Skip blanks.  Machine-written JSON has none between tokens: a byte
 * above ' ' (never a blank) is decided inline, the rest out of line. */
static inline void jr_ws(jr_t *r) {
    if (r->pos < r->n && (unsigned char)r->s[r->pos] > ' ') return;
    jr_ws_run(r);
}

static int jr_hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t jr_utf8_len(unsigned cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* 0x80 in each byte of the result whose byte in x (8 message bytes,
 * little endian) ends a plain run of a string: a control character, '"',
 * '\\' or a byte >= 0x80.  Exact for the lowest such byte (a borrow can
 * only make a false hit above a true one), which is all jr_string uses
 * (as jw_special8 of the writer, proto_json.c). */
static inline uint64_t jr_special8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, high = ones << 7;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) |
            ((b - ones) & ~b) | x) & high;
}

/* A string at r->pos ('"'): validate, measure. */
static int jr_string(jr_t *r, jv_t *v) {
    const unsigned char *u = (const unsigned char *)r->s;
    size_t i = r->pos + 1, slen = 0;
    int esc = 0;
    while (1) {
        /* the plain run: no quote, backslash, control or non-ASCII byte;
         * 8 bytes a word while 8 are left, then byte by byte */
        size_t st = i;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; i + 8 <= r->n; i += 8) {
            uint64_t x, m;
            memcpy(&x, u + i, sizeof(x));
            if ((m = jr_special8(x)) != 0) {
                i += (size_t)__builtin_ctzll(m) >> 3;
                goto stop; /* u[i] ends the run */
            }
        }
#endif
        while (i < r->n && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' &&
               u[i] != '\\')
            i++;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    stop:
#endif
        slen += i - st;
        if (i >= r->n) {
            r->pos = i;
            return jr_fail(r, "premature end of input in a string");
        }
        unsigned c = u[i];
        if (c == '"') break;
        if (c < 0x20) {
            r->pos = i;
            return jr_fail(r, "control character in a string");
        }
        if (c >= 0x80) {
            size_t k = rs_utf8_seq_len(u + i, r->n - i);
            if (!k) {
                r->pos = i;
                return jr_fail(r, "invalid UTF-8 in a string");
            }
            i += k;
            slen += k;
            continue;
        }
        /* an escape */
        esc = 1;
        if (i + 1 >= r->n) {
            r->pos = i;
            return jr_fail(r, "premature end of input in an escape");
        }
        char e = (char)u[i + 1];
        if (e == 'u') {
            unsigned cp, lo;
            if (i + 6 > r->n || jr_hex4(r->s + i + 2, &cp)) {
                r->pos = i;
                return jr_fail(r, "invalid \\u escape");
            }
            i += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 6 > r->n || u[i] != '\\' || u[i + 1] != 'u' ||
                    jr_hex4(r->s + i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    r->pos = i;
                    return jr_fail(r, "invalid Unicode surrogate pair");
                }
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                r->pos = i;
                return jr_fail(r, "invalid Unicode: lone low surrogate");
            } else if (cp == 0) {
                r->pos = i;
                return jr_fail(r, "\\u0000 is not allowed");
            }
            slen += jr_utf8_len(cp);
            continue;
        }
        if (!strchr("\"\\/bfnrt", e) || e == '\0') {
            r->pos = i;
            return jr_fail(r, "invalid escape");
        }
        i += 2;
        slen++;
    }
    v->type = JT_STR;
    v->p = r->s + r->pos + 1;
    v->len = i - r->pos - 1;
    v->slen = slen;
    v->esc = esc;
    r->pos = i + 1;
    return 0;
}

/* A number at r->pos. */
static int jr_number(jr_t *r, jv_t *v) {
    const char *s = r->s;
    size_t i = r->pos, st = i;
    int real = 0;
    if (i < r->n && s[i] == '-') i++;
    if (i >= r->n || s[i] < '0' || s[i] > '9') {
        r->pos = i;
        return jr_fail(r, "invalid token");
    }
    if (s[i] == '0') {
        i++;
        if (i < r->n && s[i] >= '0' && s[i] <= '9') {
            r->pos = i;
            return jr_fail(r, "invalid token (leading zero)");
        }
    } else {
        while (i < r->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < r->n && s[i] == '.') {
        real = 1;
        i++;
        if (i >= r->n || s[i] < '0' || s[i] > '9') {
            r->pos = i;
            return jr_fail(r, "invalid token (fraction)");
        }
        while (i < r->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < r->n && (s[i] == 'e' || s[i] == 'E')) {
        real = 1;
        i++;
        if (i < r->n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= r->n || s[i] < '0' || s[i] > '9') {
            r->pos = i;
            return jr_fail(r, "invalid token (exponent)");
        }
        while (i < r->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    v->p = s + st;
    v->len = i - st;
    if (real) {
        rs_parse_f64(v->p, v->len, &v->d);
        if (isinf(v->d)) return jr_fail(r, "real number overflow");
        v->type = JT_REAL;
    } else {
        /* int64, as jansson: overflow is an error */
        size_t k = s[st] == '-' ? st + 1 : st;
        uint64_t m = 0, lim = s[st] == '-' ? (uint64_t)INT64_MAX + 1
                                           : (uint64_t)INT64_MAX;
        for (; k < i; k++) {
            unsigned dg = (unsigned)(s[k] - '0');
            if (m > (lim - dg) / 10) return jr_fail(r, "too big integer");
            m = m * 10 + dg;
        }
        v->i = s[st] == '-' ? (int64_t)(0 - m) : (int64_t)m;
        v->type = JT_INT;
    }
    r->pos = i;
    return 0;
}

static int jr_word(jr_t *r, const char *w, size_t wl, int type, jv_t *v) {
    if (r->n - r->pos < wl || memcmp(r->s + r->pos, w, wl))
        return jr_fail(r, "invalid token");
    v->type = type;
    v->p = r->s + r->pos;
    v->len = wl;
    r->pos += wl;
    return 0;
}

static int jr_scalar(jr_t *r, jv_t *v) {
    if (r->pos >= r->n) return jr_fail(r, "premature end of input");
    switch (r->s[r->pos]) {
    case '"': return jr_string(r, v);
    case 't': return jr_word(r, "true", 4, JT_TRUE, v);
    case 'f': return jr_word(r, "false", 5, JT_FALSE, v);
    case 'n': return jr_word(r, "null", 4, JT_NULL, v);
    default: return jr_number(r, v);
    }
}

/* A container at r->pos ('[' or '{'): validate all of it, iteratively
 * (a bit stack: 1 = object).  v spans it. */
static int jr_container(jr_t *r, jv_t *v, int base) {
    unsigned char obj[JR_MAX_DEPTH / 8 + 1];
    enum { FIRST, NEXT, AFTER } want;
    int d = base; /* containers already open around this one */
    size_t st = r->pos;
    jv_t tmp;
open:
    if (d >= JR_MAX_DEPTH) return jr_fail(r, "maximum parsing depth reached");
    if (r->s[r->pos] == '{') obj[d / 8] |= (unsigned char)(1u << (d % 8));
    else obj[d / 8] &= (unsigned char)~(1u << (d % 8));
    d++;
    r->pos++;
    want = FIRST;
    for (;;) {
        jr_ws(r);
        if (r->pos >= r->n) return jr_fail(r, "premature end of input");
        char c = r->s[r->pos];
        int is_obj = (obj[(d - 1) / 8] >> ((d - 1) % 8)) & 1;
        if (want == AFTER) {
            if (c == ',') {
                r->pos++;
                want = NEXT;
                continue;
            }
            if (c != (is_obj ? '}' : ']'))
                return jr_fail(r, is_obj ? "',' or '}' expected"
                                         : "',' or ']' expected");
            r->pos++;
            goto close;
        }
        if (want == FIRST && c == (is_obj ? '}' : ']')) {
            r->pos++;
            goto close;
        }
        if (is_obj) {
            if (c != '"') return jr_fail(r, "string or '}' expected");
            if (jr_string(r, &tmp)) return -1;
            jr_ws(r);
            if (r->pos >= r->n || r->s[r->pos] != ':')
                return jr_fail(r, "':' expected");
            r->pos++;
            jr_ws(r);
            if (r->pos >= r->n) return jr_fail(r, "premature end of input");
            c = r->s[r->pos];
        }
        if (c == '[' || c == '{') goto open;
        if (jr_scalar(r, &tmp)) return -1;
        want = AFTER;
        continue;
    close:
        if (--d == base) break;
        want = AFTER;
    }
    v->type = r->s[st] == '{' ? JT_OBJ : JT_ARR;
    v->p = r->s + st;
    v->len = r->pos - st;
    return 0;
}

/* A member value of the top-level object (depth 1 is that object). */
static int jr_value(jr_t *r, jv_t *v) {
    jr_ws(r);
    if (r->pos < r->n && (r->s[r->pos] == '[' || r->s[r->pos] == '{'))
        return jr_container(r, v, 1);
    return jr_scalar(r, v);
}

/* The decoded bytes (1..4) of the next character of a validated string
 * at *sp: a plain byte or one escape (a surrogate pair is one). */
static size_t jr_unit(const char **sp, char *u) {
    const char *s = *sp;
    if (*s != '\\') {
        u[0] = *s;
        *sp = s + 1;
        return 1;
    }
    char c = s[1];
    s += 2;
    size_t n = 1;
    switch (c) {
    case 'b': u[0] = '\b'; break;
    case 'f': u[0] = '\f'; break;
    case 'n': u[0] = '\n'; break;
    case 'r': u[0] = '\r'; break;
    case 't': u[0] = '\t'; break;
    case 'u': {
        unsigned cp, lo;
        jr_hex4(s, &cp);
        s += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            jr_hex4(s + 2, &lo);
            s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp < 0x80) {
            u[0] = (char)cp;
        } else if (cp < 0x800) {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | (cp >> 12));
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            u[0] = (char)(0xF0 | (cp >> 18));
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        break;
    }
    default: u[0] = c; break; /* " \ / */
    }
    *sp = s;
    return n;
}

/* Unescape a validated string token into dst (room for v->slen bytes). */
static void jr_unescape(const jv_t *v, char *dst) {
    if (!v->esc) {
        memcpy(dst, v->p, v->len);
        return;
    }
    const char *s = v->p, *e = v->p + v->len;
    while (s < e) {
        if (*s != '\\') *dst++ = *s++;
        else dst += jr_unit(&s, dst);
    }
}

/* Two string tokens with the same decoded bytes (any length)? */
static int jr_str_eq(const jv_t *a, const jv_t *b) {
    if (a->slen != b->slen) return 0;
    if (!a->esc && !b->esc) return memcmp(a->p, b->p, a->slen) == 0;
    const char *pa = a->p, *pb = b->p;
    char ua[4], ub[4];
    size_t na = 0, ia = 0, nb = 0, ib = 0;
    for (size_t i = 0; i < a->slen; i++) {
        if (ia == na) { na = jr_unit(&pa, ua); ia = 0; }
        if (ib == nb) { nb = jr_unit(&pb, ub); ib = 0; }
        if (ua[ia++] != ub[ib++]) return 0;
    }
    return 1;
}

/* a[0..n) == b[0..n) for the short keys: inline, no library call */
static inline int jr_bytes_eq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int jr_key_eq_esc(const jv_t *k, const char *key, size_t kl) {
    char tmp[64];
    if (kl > sizeof(tmp)) return 0;
    jr_unescape(k, tmp);
    return memcmp(tmp, key, kl) == 0;
}

/* A string token equal to key[0..kl)? */
static inline int jr_key_eq(const jv_t *k, const char *key, size_t kl) {
    if (k->slen != kl) return 0;
    if (!k->esc) return jr_bytes_eq(k->p, key, kl);
    return jr_key_eq_esc(k, key, kl);
}

static inline int jr_key_is(const jv_t *k, const char *key) {
    return jr_key_eq(k, key, strlen(key));
}

/* Skip a container of a message already validated (brackets balance,
 * strings are well formed): v spans it. */
static void jr_skip_valid(jr_t *r, jv_t *v) {
    size_t st = r->pos, i = r->pos;
    int d = 0;
    do {
        char c = r->s[i++];
        if (c == '"') {
            while (r->s[i] != '"') i += r->s[i] == '\\' ? 2 : 1;
            i++;
        } else if (c == '[' || c == '{') {
            d++;
        } else if (c == ']' || c == '}') {
            d--;
        }
    } while (d > 0);
    v->type = r->s[st] == '{' ? JT_OBJ : JT_ARR;
    v->p = r->s + st;
    v->len = i - st;
    r->pos = i;
}

/* Iterate a validated container span: the next element (arrays) or
 * key + value (objects).  Returns 0 with *v (and *k), 1 at the end. */
typedef struct jr_it_s {
    jr_t r;
    int first;
} jr_it_t;

static void jr_it_init(jr_it_t *it, const jv_t *c) {
    it->r = (jr_t){.s = c->p, .n = c->len, .pos = 1};
    it->first = 1;
}

/* Past the separator before the iterator's next item: 1 at the end of
 * the span, else 0 with the reader at the item (jr_it_next, jr_it_next_in). */
static int jr_it_sep(jr_it_t *it) {
    jr_t *r = &it->r;
    jr_ws(r);
    char c = r->s[r->pos];
    if (c == ']' || c == '}') return 1;
    if (!it->first) {
        r->pos++; /* ',' */
        jr_ws(r);
    }
    it->first = 0;
    return 0;
}

static int jr_it_next(jr_it_t *it, jv_t *k, jv_t *v) {
    if (jr_it_sep(it)) return 1;
    jr_t *r = &it->r;
    if (k) {
        jr_string(r, k);
        jr_ws(r);
        r->pos++; /* ':' */
        jr_ws(r);
    }
    if (r->s[r->pos] == '[' || r->s[r->pos] == '{') jr_skip_valid(r, v);
    else jr_scalar(r, v);
    return 0;
}

/* The next element of an array span, as jr_it_next(it, NULL, v), except
 * that an object element is not skipped: it is entered in place, *in
 * walks its members (jr_it_next(in, k, v)) and jr_it_leave moves it past
 * the object once *in returned 1 -- or jr_it_skip skips it unread.  One
 * scan of each element instead of two (skip, then walk).  v->p / v->len
 * are not set for an object entered (v->type is JT_OBJ). */
static int jr_it_next_in(jr_it_t *it, jv_t *v, jr_it_t *in) {
    if (jr_it_sep(it)) return 1;
    jr_t *r = &it->r;
    if (r->s[r->pos] == '{') { /* stays at '{' until jr_it_leave/skip */
        *v = (jv_t){.type = JT_OBJ, .p = r->s + r->pos};
        in->r = (jr_t){.s = r->s + r->pos, .n = r->n - r->pos, .pos = 1};
        in->first = 1;
        return 0;
    }
    if (r->s[r->pos] == '[') jr_skip_valid(r, v);
    else jr_scalar(r, v);
    return 0;
}

/* After jr_it_next(in, ...) returned 1 (at the object's '}'). */
static void jr_it_leave(jr_it_t *it, const jr_it_t *in) {
    it->r.pos += in->r.pos + 1;
}

/* An object element of jr_it_next_in left unread. */
static void jr_it_skip(jr_it_t *it, const jv_t *v) {
    jv_t tmp;
    if (v->type == JT_OBJ) jr_skip_valid(&it->r, &tmp);
}

/* ---------------------------------------------------------- field getters
 * The same rules and messages as the jd_* getters of proto_json.c. */

#define JD_REQ    0x1
#define JD_INT_OK 0x2
#define JD_STR_OK 0x4
#define JD_BOOL   0x8
#define JD_TIME   0x10

static rs_err_t jr_missing(const char *what, char *errstr, size_t es) {
    return rs_errf(errstr, es, RS_ERR_INVALID, "field '%s': missing", what);
}

static rs_err_t jr_expected(const char *what, const char *type, char *errstr,
                            size_t es) {
    return rs_errf(errstr, es, RS_ERR_INVALID, "field '%s': expected %s",
                   what, type);
}

static int jr_absent(const jv_t *v) {
    return v->type == JT_NONE || v->type == JT_NULL;
}

/* A string token into dst[size] (RS_ERR_TOOBIG if it does not fit). */
static rs_err_t jr_str_copy(const jv_t *v, char *dst, size_t size,
                            const char *what, char *errstr, size_t es) {
    dst[0] = '\0';
    if (v->slen >= size)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "field '%s': too long (%zu bytes, max %zu)", what,
                       v->slen, size - 1);
    jr_unescape(v, dst);
    dst[v->slen] = '\0';
    return RS_OK;
}

static rs_err_t jr_str(const jv_t *v, const char *what, char *dst, size_t size,
                       int flags, char *errstr, size_t es) {
    dst[0] = '\0';
    if (jr_absent(v))
        return (flags & JD_REQ) ? jr_missing(what, errstr, es) : RS_OK;
    if (v->type == JT_STR) return jr_str_copy(v, dst, size, what, errstr, es);
    if ((flags & JD_INT_OK) && v->type == JT_INT) {
        char tmp[RS_FMT_I64_MAX];
        int n = rs_fmt_i64(v->i, tmp);
        return rs_str_copy(dst, size, tmp, (size_t)n, what, errstr, es);
    }
    return jr_expected(what, (flags & JD_INT_OK) ? "string or integer"
                                                  : "string", errstr, es);
}

static rs_err_t jr_numstr(const jv_t *v, const char *what, double *out,
                          char *errstr, size_t es) {
    char tmp[72];
    int is_nan;
    /* numeric strings are short; a long one (or one with escapes, which
     * rs_num_parse would refuse as well) is simply not a number */
    size_t len = v->slen < sizeof(tmp) ? v->slen : sizeof(tmp) - 1;
    if (v->slen < sizeof(tmp)) jr_unescape(v, tmp);
    else memcpy(tmp, v->p, len);
    if (v->slen < sizeof(tmp) && rs_num_parse(tmp, len, out) == 0)
        return RS_OK;
    if (v->slen < sizeof(tmp) && rs_nonfinite_word(tmp, len, &is_nan))
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': %s is not allowed", what,
                       is_nan ? "NaN" : "infinity");
    return rs_errf(errstr, es, RS_ERR_INVALID,
                   "field '%s': expected number, got a non-numeric string",
                   what);
}

static rs_err_t jr_double(const jv_t *v, const char *what, double *out,
                          int flags, char *errstr, size_t es) {
    *out = 0;
    if (jr_absent(v))
        return (flags & JD_REQ) ? jr_missing(what, errstr, es) : RS_OK;
    if (v->type == JT_INT) {
        *out = (double)v->i;
        return RS_OK;
    }
    if (v->type == JT_REAL) {
        *out = v->d;
        return RS_OK;
    }
    if ((flags & JD_STR_OK) && v->type == JT_STR)
        return jr_numstr(v, what, out, errstr, es);
    if ((flags & JD_BOOL) && (v->type == JT_TRUE || v->type == JT_FALSE)) {
        *out = v->type == JT_TRUE ? 1.0 : 0.0;
        return RS_OK;
    }
    return jr_expected(what, "number", errstr, es);
}

/* Strict decimal integer string ("-123"), as proto3 JSON writes int64. */
static int jr_intstr(const char *s, size_t len, int64_t *out) {
    size_t i = 0;
    if (len && s[0] == '-') i++;
    if (i == len || len > 20) return -1;
    uint64_t m = 0, lim = i ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t k = i; k < len; k++) {
        if (s[k] < '0' || s[k] > '9') return -1;
        unsigned dg = (unsigned)(s[k] - '0');
        if (m > (lim - dg) / 10) return -1;
        m = m * 10 + dg;
    }
    *out = i ? (int64_t)(0 - m) : (int64_t)m;
    return 0;
}

static rs_err_t jr_i64(const jv_t *v, const char *what, int64_t *out,
                       int flags, char *errstr, size_t es) {
    *out = 0;
    if (jr_absent(v))
        return (flags & JD_REQ) ? jr_missing(what, errstr, es) : RS_OK;
    if (v->type == JT_INT) {
        *out = v->i;
        return RS_OK;
    }
    if (v->type == JT_REAL) {
        double d = v->d;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
            *out = (int64_t)d;
            return RS_OK;
        }
        return jr_expected(what, "integer", errstr, es);
    }
    if (v->type == JT_STR) {
        char tmp[72];
        if (v->slen < sizeof(tmp)) {
            jr_unescape(v, tmp);
            tmp[v->slen] = '\0';
            if (flags & JD_TIME) {
                if (rs_time_parse(tmp, v->slen, out) == 0) return RS_OK;
                return rs_errf(errstr, es, RS_ERR_INVALID,
                               "field '%s': unparseable timestamp", what);
            }
            if (jr_intstr(tmp, v->slen, out) == 0) return RS_OK;
        } else if (flags & JD_TIME) {
            return rs_errf(errstr, es, RS_ERR_INVALID,
                           "field '%s': unparseable timestamp", what);
        }
    }
    return jr_expected(what, "integer", errstr, es);
}

static rs_err_t jr_schema(const jv_t *v, char *errstr, size_t es) {
    int64_t x;
    rs_err_t err = jr_i64(v, "schema_version", &x, 0, errstr, es);
    if (err) return err;
    if (x < 0 || x > (int64_t)UINT32_MAX)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': %lld is outside [0, 4294967295]",
                       "schema_version", (long long)x);
    if (x > RS_SCHEMA_VERSION)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field 'schema_version': version %u is newer than "
                       "this build (%d)", (unsigned)x, RS_SCHEMA_VERSION);
    return RS_OK;
}

/* ---------------------------------------------------------- top level */

/* Pass 1 over the whole message: validate, and keep the last value of each
 * of keys[0..nk) in vals[]. */
static rs_err_t jr_top(const char *buf, size_t len, const char *const *keys,
                       const size_t *klen, int nk, jv_t *vals, char *errstr,
                       size_t es) {
    jr_t r = {.s = buf, .n = len, .pos = 0};
    jv_t top, k, v;
    if (!buf) return rs_errf(errstr, es, RS_ERR_INVALID, "no input");
    if (len > RS_MSG_MAX)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "message of %zu bytes exceeds the limit of %d bytes",
                       len, RS_MSG_MAX);
    /* absent = JT_NONE; a value's other members are read only once its
     * type says it is there (jr_absent first in every getter) */
    for (int i = 0; i < nk; i++) vals[i].type = JT_NONE;
    jr_ws(&r);
    if (r.pos >= r.n || (buf[r.pos] != '{' && buf[r.pos] != '[')) {
        jr_fail(&r, r.pos >= r.n ? "'[' or '{' expected near end of input"
                                 : "'[' or '{' expected");
        goto syntax;
    }
    if (buf[r.pos] == '[') { /* valid JSON, but not a record */
        if (jr_container(&r, &top, 0)) goto syntax;
        jr_ws(&r);
        if (r.pos != r.n) {
            jr_fail(&r, "end of input expected");
            goto syntax;
        }
        return rs_errf(errstr, es, RS_ERR_INVALID, "expected a JSON object");
    }
    /* The members of the top-level object, validated as they come (the
     * values by jr_value); the known keys' values kept. */
    r.pos++;
    for (int first = 1;; first = 0) {
        jr_ws(&r);
        if (r.pos >= r.n) {
            jr_fail(&r, "premature end of input");
            goto syntax;
        }
        if (buf[r.pos] == '}' && first) break;
        if (!first) {
            if (buf[r.pos] == '}') break;
            if (buf[r.pos] != ',') {
                jr_fail(&r, "',' or '}' expected");
                goto syntax;
            }
            r.pos++;
            jr_ws(&r);
        }
        if (r.pos >= r.n || buf[r.pos] != '"') {
            jr_fail(&r, "string or '}' expected");
            goto syntax;
        }
        if (jr_string(&r, &k)) goto syntax;
        jr_ws(&r);
        if (r.pos >= r.n || buf[r.pos] != ':') {
            jr_fail(&r, "':' expected");
            goto syntax;
        }
        r.pos++;
        if (jr_value(&r, &v)) goto syntax;
        for (int i = 0; i < nk; i++)
            if (jr_key_eq(&k, keys[i], klen[i])) {
                vals[i] = v;
                break;
            }
    }
    r.pos++; /* '}' */
    jr_ws(&r);
    if (r.pos != r.n) {
        jr_fail(&r, "end of input expected");
        goto syntax;
    }
    return RS_OK;
syntax: {
        int line = 1, col = 1;
        for (size_t i = 0; i < r.why_pos && i < len; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "invalid JSON at line %d column %d: %s", line, col,
                       r.why);
    }
}

/* numeric_fields: [{"name": n, "value": v}, ...] or {"n": v, ...} */
static rs_err_t jr_numeric_fields(const jv_t *c, rs_event_t *ev, char *errstr,
                                  size_t es) {
    char what[96];
    rs_err_t err;
    jr_it_t it;
    jv_t k, v;
    if (jr_absent(c)) return RS_OK;
    if (c->type == JT_OBJ) {
        /* Distinct keys in order of first appearance, last value wins (a
         * JSON object as jansson held it). */
        jv_t kk[RS_MAX_NUMERIC], vv[RS_MAX_NUMERIC];
        size_t n = 0;
        jr_it_init(&it, c);
        while (jr_it_next(&it, &k, &v) == 0) {
            /* (beyond the 16 kept, repeated names are counted again:
             * only the count in the "too many" message can differ from
             * jansson's) */
            size_t j = 0;
            while (j < n && j < RS_MAX_NUMERIC && !jr_str_eq(&kk[j], &k)) j++;
            if (j < n && j < RS_MAX_NUMERIC) {
                vv[j] = v;
                continue;
            }
            if (n < RS_MAX_NUMERIC) {
                kk[n] = k;
                vv[n] = v;
            }
            n++;
        }
        if (n > RS_MAX_NUMERIC)
            return rs_errf(errstr, es, RS_ERR_TOOBIG,
                           "field 'numeric_fields': %zu entries, max %d", n,
                           RS_MAX_NUMERIC);
        for (size_t i = 0; i < n; i++) {
            rs_numeric_t *nf = &ev->numeric[ev->n_numeric];
            char key[RS_NAME_MAX + 8];
            size_t kl = kk[i].slen < sizeof(key) ? kk[i].slen : sizeof(key) - 1;
            if (kk[i].slen < sizeof(key)) jr_unescape(&kk[i], key);
            key[kl] = '\0';
            snprintf(what, sizeof(what), "numeric_fields.%s", key);
            if ((err = jr_str_copy(&kk[i], nf->name, sizeof(nf->name), what,
                                   errstr, es)) ||
                (err = jr_double(&vv[i], what, &nf->value,
                                 JD_REQ | JD_STR_OK | JD_BOOL, errstr, es)))
                return err;
            ev->n_numeric++;
        }
        return RS_OK;
    }
    if (c->type != JT_ARR)
        return jr_expected("numeric_fields", "array", errstr, es);
    /* One walk: elements up to the maximum are read (the first error
     * kept), the rest only counted -- too many entries is the error to
     * report first, as the jansson decoder checked the size first. */
    size_t n = 0;
    rs_err_t first = RS_OK;
    jr_it_t e;
    jr_it_init(&it, c);
    for (; jr_it_next_in(&it, &v, &e) == 0; n++) {
        if (n >= RS_MAX_NUMERIC || first) {
            jr_it_skip(&it, &v);
            continue;
        }
        rs_numeric_t *nf = &ev->numeric[n];
        jv_t name = {0}, value = {0};
        if (v.type != JT_OBJ) {
            first = rs_errf(errstr, es, RS_ERR_INVALID,
                            "field '%s[%zu]': expected object",
                            "numeric_fields", n);
            continue;
        }
        while (jr_it_next(&e, &k, &v) == 0) {
            if (jr_key_is(&k, "name")) name = v;
            else if (jr_key_is(&k, "value")) value = v;
        }
        jr_it_leave(&it, &e);
        /* `what` is only formatted for a message (second call) */
        if (jr_str(&name, "", nf->name, sizeof(nf->name), JD_REQ, NULL, 0)) {
            snprintf(what, sizeof(what), "numeric_fields[%zu].name", n);
            first = jr_str(&name, what, nf->name, sizeof(nf->name), JD_REQ,
                           errstr, es);
        } else if (jr_double(&value, "", &nf->value, JD_STR_OK | JD_BOOL,
                             NULL, 0)) {
            snprintf(what, sizeof(what), "numeric_fields[%zu].value", n);
            first = jr_double(&value, what, &nf->value, JD_STR_OK | JD_BOOL,
                              errstr, es);
        } else {
            ev->n_numeric = (int)n + 1;
        }
    }
    if (n > RS_MAX_NUMERIC)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "field '%s': %zu entries, max %zu", "numeric_fields",
                       n, (size_t)RS_MAX_NUMERIC);
    return first;
}

/* categorical_fields: [{"name": n, "value": s}, ...] or {"n": s, ...} */
static rs_err_t jr_categ_fields(const jv_t *c, rs_event_t *ev, char *errstr,
                                size_t es) {
    char what[96];
    rs_err_t err;
    jr_it_t it;
    jv_t k, v;
    if (jr_absent(c)) return RS_OK;
    if (c->type == JT_OBJ) {
        jv_t kk[RS_MAX_CATEG], vv[RS_MAX_CATEG];
        size_t n = 0;
        jr_it_init(&it, c);
        while (jr_it_next(&it, &k, &v) == 0) {
            size_t j = 0; /* as numeric_fields */
            while (j < n && j < RS_MAX_CATEG && !jr_str_eq(&kk[j], &k)) j++;
            if (j < n && j < RS_MAX_CATEG) {
                vv[j] = v;
                continue;
            }
            if (n < RS_MAX_CATEG) {
                kk[n] = k;
                vv[n] = v;
            }
            n++;
        }
        if (n > RS_MAX_CATEG)
            return rs_errf(errstr, es, RS_ERR_TOOBIG,
                           "field 'categorical_fields': %zu entries, max %d",
                           n, RS_MAX_CATEG);
        for (size_t i = 0; i < n; i++) {
            rs_categ_t *cf = &ev->categ[ev->n_categ];
            char key[RS_NAME_MAX + 8];
            size_t kl = kk[i].slen < sizeof(key) ? kk[i].slen : sizeof(key) - 1;
            if (kk[i].slen < sizeof(key)) jr_unescape(&kk[i], key);
            key[kl] = '\0';
            snprintf(what, sizeof(what), "categorical_fields.%s", key);
            if ((err = jr_str_copy(&kk[i], cf->name, sizeof(cf->name), what,
                                   errstr, es)) ||
                (err = jr_str(&vv[i], what, cf->value, sizeof(cf->value),
                              JD_INT_OK, errstr, es)))
                return err;
            ev->n_categ++;
        }
        return RS_OK;
    }
    if (c->type != JT_ARR)
        return jr_expected("categorical_fields", "array", errstr, es);
    size_t n = 0; /* one walk, as numeric_fields */
    rs_err_t first = RS_OK;
    jr_it_t e;
    jr_it_init(&it, c);
    for (; jr_it_next_in(&it, &v, &e) == 0; n++) {
        if (n >= RS_MAX_CATEG || first) {
            jr_it_skip(&it, &v);
            continue;
        }
        rs_categ_t *cf = &ev->categ[n];
        jv_t name = {0}, value = {0};
        if (v.type != JT_OBJ) {
            first = rs_errf(errstr, es, RS_ERR_INVALID,
                            "field '%s[%zu]': expected object",
                            "categorical_fields", n);
            continue;
        }
        while (jr_it_next(&e, &k, &v) == 0) {
            if (jr_key_is(&k, "name")) name = v;
            else if (jr_key_is(&k, "value")) value = v;
        }
        jr_it_leave(&it, &e);
        if (jr_str(&name, "", cf->name, sizeof(cf->name), JD_REQ, NULL, 0)) {
            snprintf(what, sizeof(what), "categorical_fields[%zu].name", n);
            first = jr_str(&name, what, cf->name, sizeof(cf->name), JD_REQ,
                           errstr, es);
        } else if (jr_str(&value, "", cf->value, sizeof(cf->value),
                          JD_INT_OK, NULL, 0)) {
            snprintf(what, sizeof(what), "categorical_fields[%zu].value", n);
            first = jr_str(&value, what, cf->value, sizeof(cf->value),
                           JD_INT_OK, errstr, es);
        } else {
            ev->n_categ = (int)n + 1;
        }
    }
    if (n > RS_MAX_CATEG)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "field '%s': %zu entries, max %zu",
                       "categorical_fields", n, (size_t)RS_MAX_CATEG);
    return first;
}

enum { EK_ID, EK_TYPE, EK_ENTITY, EK_CPTY, EK_TIME, EK_AMOUNT, EK_NUM,
       EK_CAT, EK_SCHEMA, EK_N };
static const char *const rs_event_keys[EK_N] = {
    "id", "type", "entity_id", "counterparty_id", "event_time_ms", "amount",
    "numeric_fields", "categorical_fields", "schema_version"};
#define JR_KL(s) (sizeof(s) - 1)
static const size_t rs_event_klen[EK_N] = { /* strlen of each key */
    JR_KL("id"), JR_KL("type"), JR_KL("entity_id"), JR_KL("counterparty_id"),
    JR_KL("event_time_ms"), JR_KL("amount"), JR_KL("numeric_fields"),
    JR_KL("categorical_fields"), JR_KL("schema_version")};

rs_err_t rs_event_from_json(const char *buf, size_t len, rs_event_t *ev,
                            char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    jv_t f[EK_N];
    rs_err_t err;
    if (!ev) return rs_errf(errstr, es, RS_ERR_INVALID, "no event");
    memset(ev, 0, sizeof(*ev));
    if ((err = jr_top(buf, len, rs_event_keys, rs_event_klen, EK_N, f,
                      errstr, es)))
        return err;
    if ((err = jr_str(&f[EK_ID], "id", ev->id, sizeof(ev->id),
                      JD_REQ | JD_INT_OK, errstr, es)) ||
        (err = jr_str(&f[EK_TYPE], "type", ev->type, sizeof(ev->type),
                      JD_REQ, errstr, es)) ||
        (err = jr_str(&f[EK_ENTITY], "entity_id", ev->entity_id,
                      sizeof(ev->entity_id), JD_REQ | JD_INT_OK, errstr,
                      es)) ||
        (err = jr_str(&f[EK_CPTY], "counterparty_id", ev->counterparty_id,
                      sizeof(ev->counterparty_id), JD_INT_OK, errstr, es)) ||
        (err = jr_i64(&f[EK_TIME], "event_time_ms", &ev->event_time_ms,
                      JD_REQ | JD_TIME, errstr, es)) ||
        (err = jr_double(&f[EK_AMOUNT], "amount", &ev->amount, JD_STR_OK,
                         errstr, es)) ||
        (err = jr_numeric_fields(&f[EK_NUM], ev, errstr, es)) ||
        (err = jr_categ_fields(&f[EK_CAT], ev, errstr, es)) ||
        (err = jr_schema(&f[EK_SCHEMA], errstr, es)))
        return err;
    return rs_event_validate(ev, errstr, es);
}

enum { LK_EVENT, LK_ENTITY, LK_VALUE, LK_TIME, LK_SCHEMA, LK_N };
static const char *const rs_label_keys[LK_N] = {
    "event_id", "entity_id", "value", "label_time_ms", "schema_version"};
static const size_t rs_label_klen[LK_N] = {
    JR_KL("event_id"), JR_KL("entity_id"), JR_KL("value"),
    JR_KL("label_time_ms"), JR_KL("schema_version")};

rs_err_t rs_label_from_json(const char *buf, size_t len, rs_label_t *lb,
                            char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    jv_t f[LK_N];
    rs_err_t err;
    if (!lb) return rs_errf(errstr, es, RS_ERR_INVALID, "no label");
    memset(lb, 0, sizeof(*lb));
    if ((err = jr_top(buf, len, rs_label_keys, rs_label_klen, LK_N, f,
                      errstr, es)))
        return err;
    if ((err = jr_str(&f[LK_EVENT], "event_id", lb->event_id,
                      sizeof(lb->event_id), JD_REQ | JD_INT_OK, errstr,
                      es)) ||
        (err = jr_str(&f[LK_ENTITY], "entity_id", lb->entity_id,
                      sizeof(lb->entity_id), JD_REQ | JD_INT_OK, errstr,
                      es)) ||
        (err = jr_double(&f[LK_VALUE], "value", &lb->value,
                         JD_STR_OK | JD_BOOL, errstr, es)) ||
        (err = jr_i64(&f[LK_TIME], "label_time_ms", &lb->label_time_ms,
                      JD_REQ | JD_TIME, errstr, es)) ||
        (err = jr_schema(&f[LK_SCHEMA], errstr, es)))
        return err;
    return rs_label_validate(lb, errstr, es);
}
