/* proto_int.h -- helpers shared by the codecs of the proto module.
 *
 * Private to proto/: string checks (UTF-8, control characters), the strict
 * decimal number grammar used for numeric strings and CSV cells, and the
 * bounded string copy that turns "too long" into RS_ERR_TOOBIG.  Pure
 * functions, reentrant.
 */
#ifndef RS_PROTO_INT_H
#define RS_PROTO_INT_H

#include "proto/proto.h"

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s[0] (1..4), or 0 if the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and code
 * points above U+10FFFF are invalid).  `n` is the bytes available. */
size_t rs_utf8_seq_len(const unsigned char *s, size_t n);

/* Index of the first invalid UTF-8 byte in s[0..len), or -1 if valid. */
long rs_utf8_invalid_at(const char *s, size_t len);

/* Index of the first control character (< 0x20 or 0x7f) or -1. */
long rs_ctrl_at(const char *s, size_t len);

/* Strict decimal number: optional sign, digits with optional '.' and
 * fraction (".5" and "5." allowed), optional exponent; no hex, no
 * inf/nan, no surrounding blanks.  Returns 0 and sets *out if it parses
 * fully to a finite double; -1 otherwise. */
int rs_num_parse(const char *s, size_t len, double *out);

/* 1 if s[0..len) spells NaN or infinity in one of the usual ways ("NaN",
 * "nan", "inf", "-Infinity", ...); sets *is_nan. */
int rs_nonfinite_word(const char *s, size_t len, int *is_nan);

/* Copy s[0..len) into dst[size] NUL-terminated.  A string with len >=
 * size is RS_ERR_TOOBIG ("field '<what>': too long (70 bytes, max 63)"),
 * an embedded NUL is RS_ERR_INVALID.  dst is left "" on error. */
rs_err_t rs_str_copy(char *dst, size_t size, const char *s, size_t len,
                     const char *what, char *errstr, size_t errstr_size);

/* Checks one string of a record in place: NUL-terminated inside its
 * buffer, valid UTF-8, and (if no_ctrl) without control characters; if
 * required, non-empty.  Errors are RS_ERR_INVALID naming `what`. */
rs_err_t rs_str_check(const char *s, size_t size, const char *what,
                      int required, int no_ctrl, char *errstr,
                      size_t errstr_size);

/* Column roles of a mapping, shared by the CSV and foreign JSON
 * decoders. */
enum {
    RS_COL_EXTRA = 0, RS_COL_ID, RS_COL_TYPE, RS_COL_ENTITY, RS_COL_CPTY,
    RS_COL_TIME, RS_COL_AMOUNT, RS_COL_LABEL
};
/* Roles of column `name` under `map` as a bit mask (1u << RS_COL_ID, ...);
 * 0 if unmapped.  One column may serve several roles (id=card,entity=card). */
unsigned rs_map_roles(const rs_csv_map_t *map, const char *name, size_t len);

/* Parse a label cell: a number in [0,1] or true/false.  0 or -1. */
int rs_label_parse(const char *s, size_t len, double *out);

/* The jansson decoders the streaming ones (proto_jsonr.c) replaced on the
 * per-event path: same contract as rs_event_from_json /
 * rs_label_from_json.  Kept as the reference for tests and fuzzing. */
rs_err_t rs_event_from_json_jansson(const char *buf, size_t len,
                                    rs_event_t *ev, char *errstr,
                                    size_t errstr_size);
rs_err_t rs_label_from_json_jansson(const char *buf, size_t len,
                                    rs_label_t *lb, char *errstr,
                                    size_t errstr_size);

#endif /* RS_PROTO_INT_H */
