/* fmt.h -- numbers to text and back, exactly and without printf/strtod on
 * the common path.
 *
 * Output: rs_fmt_f32 / rs_fmt_f64 write the SHORTEST decimal that reads
 * back (strtof / strtod, round-to-nearest-even) to the very same float32 /
 * float64; among the shortest ones, the one closest to the value (ties to
 * an even last digit).  The algorithm is Schubfach (R. Giulietti, "The
 * Schubfach way to render doubles", 2020): one 128-bit multiplication per
 * interval bound against a table of powers of ten, no loop over lengths,
 * no big integers.  Our own implementation (fmt.c), tested against glibc's
 * strtof/strtod and printf (tests/common/test_fmt.c, exhaustive for every
 * float32 with RS_FMT_EXHAUSTIVE=1) and fuzzed (tests/fuzz/fuzz_fmt.c).
 *
 * Notation: with d1..dn the digits and x the decimal exponent of d1,
 * fixed notation when -7 < x < 16 ("0.001", "42", "1234.5"), else
 * d1[.d2..dn]e<x> ("1e-7", "1.5e16", no '+').  (JavaScript's rule, but
 * integers stop below 1e16 so that JSON readers that hold integers in an
 * int64, like jansson, read every output.)  Zero is "0" / "-0"; non-finite
 * values "nan", "inf", "-inf" (JSON writers handle those themselves).  No
 * locale: the decimal separator is always '.'.
 *
 * Input: rs_parse_f64 / rs_parse_f32 read a decimal number
 * [+-]?(D+[.D*]|.D+)([eE][+-]?D+)? and give the value bit-identical to
 * strtod / strtof on the same text (correct rounding, overflow to +-inf,
 * underflow to +-0 or a subnormal).  Clinger's fast path (an exact double
 * product or quotient) and Eisel-Lemire (one or two 64x128-bit products,
 * D. Lemire, "Number parsing at a gigabyte per second", 2021) decide
 * almost every input; inputs with more than 19 significant digits, results
 * in the subnormal range and the rare ambiguous products go to
 * strtod/strtof (a number longer than 511 characters is copied to the heap
 * for it: never on valid riskstream records).
 *
 * Threads: every function is reentrant, uses only its arguments and
 * read-only tables, and writes only into the caller's buffer.
 */
#ifndef RS_FMT_H
#define RS_FMT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Buffer sizes that always suffice (including a NUL, which the functions
 * below do NOT write: they return the length). */
#define RS_FMT_F32_MAX 24   /* "-0.00000" and 9 digits: 17 chars   */
#define RS_FMT_F64_MAX 32   /* "-0.00000" and 17 digits: 25 chars  */
#define RS_FMT_I64_MAX 21   /* "-9223372036854775808"         */

/* Shortest round-trip text of v into buf[RS_FMT_F32_MAX]; returns the
 * number of characters written (no NUL).  @locality any thread */
int rs_fmt_f32(float v, char *buf);

/* The same for a double: buf[RS_FMT_F64_MAX].  @locality any thread */
int rs_fmt_f64(double v, char *buf);

/* Decimal integers (no NUL): buf[RS_FMT_I64_MAX].  @locality any */
int rs_fmt_i64(int64_t v, char *buf);
int rs_fmt_u64(uint64_t v, char *buf);

/* printf's own notations, byte for byte, without printf: what
 * snprintf(buf, size, "%.<prec>f", v) (rs_fmt_fixed; plus = 1: "%+.<prec>f")
 * and "%.<prec>g" (rs_fmt_general) write, in the C locale, for prec 0..17.
 * Both round the exact binary value half to even at the last digit kept
 * (glibc's rule in the default rounding mode), with 128-bit integer
 * arithmetic; values whose digits do not fit that (|v| >= 1e19 for
 * fixed, extreme exponents) and non-finite ones are handed to snprintf,
 * so the result is always printf's.  Why: every printf call in a process
 * that loaded libquadmath (OpenBLAS -> libgfortran) takes glibc's slow
 * positional path (its printf hooks), and the explanation texts format
 * numbers for every explained event.  buf[RS_FMT_PRINTF_MAX]; returns the
 * length (no NUL).  @locality any thread */
#define RS_FMT_PRINTF_MAX 352 /* "%.17f" of -DBL_MAX: 309 + 18 + sign */
int rs_fmt_fixed(double v, int prec, int plus, char *buf);
int rs_fmt_general(double v, int prec, char *buf);

/* snprintf for a subset of formats, with the same output and return
 * value as glibc's (truncated to size - 1 and NUL-terminated; returns the
 * length the whole text has): conversions %s (with a precision: %.Ns,
 * %.*s), %d %i %u (lengths l, ll, z; a width with the 0 flag: %02d), %f
 * (%+.Nf, %.*f), %g, %c and %%, through rs_fmt_fixed / rs_fmt_general.
 * Any other flag, width or conversion hands the whole call to vsnprintf,
 * so every format gives printf's text.  For texts made per event (the
 * explanations' words): see rs_fmt_fixed for why.  @locality any thread */
int rs_fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse the longest prefix of s[0..len) that is a decimal number (grammar
 * above; no blanks, no hex, no inf/nan) into *out, bit-identical to strtod
 * / strtof on that prefix.  Returns the length of the prefix, 0 if s does
 * not start with a number (then *out is untouched).  The caller decides
 * whether the whole span had to be consumed.  @locality any thread */
size_t rs_parse_f64(const char *s, size_t len, double *out);
size_t rs_parse_f32(const char *s, size_t len, float *out);

/* Counters of the slow paths taken by the calling thread (strtod/strtof
 * fallbacks of the parsers), for tests and benchmarks. */
uint64_t rs_parse_fallbacks(void);

#ifdef __cplusplus
}
#endif
#endif /* RS_FMT_H */
