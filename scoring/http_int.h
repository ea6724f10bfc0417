/* http_int.h -- private to the HTTP API: the response buffer, small
 * helpers shared by the server (http.c) and the pages (http_pages.c), and
 * the inputs of the page renderers.  Not for use outside scoring/http*.c.
 *
 * The renderers are pure: they take records already read from Redis and
 * write HTML into a buffer (no I/O, every string of a record escaped).
 * Threads: everything here is reentrant; a buffer belongs to one request.
 */
#ifndef RS_HTTP_INT_H
#define RS_HTTP_INT_H

#include "scoring/http.h"

#define RS_HTTP_BODY_MAX (64u << 20) /* runaway guard for one response */

#define RS_CT_JSON "application/json"
#define RS_CT_TEXT "text/plain; charset=utf-8"
#define RS_CT_HTML "text/html; charset=utf-8"
#define RS_CT_JS "text/javascript; charset=utf-8"

struct rs_http_buf_s {
    char *p;       /* malloc'd: handed to MHD, which free()s it */
    size_t len, cap;
    int overflow;  /* RS_HTTP_BODY_MAX reached: further appends dropped */
};

/* Append a string literal (only a literal compiles: "" s). */
#define RS_HTTP_LIT(b, s) rs_http_buf_append((b), "" s, sizeof(s) - 1)

/* A JSON string literal (quotes included). */
void rs_http_buf_jstr(rs_http_buf_t *b, const char *s);
/* `s` percent-encoded for a URL path segment or query value. */
void rs_http_buf_url(rs_http_buf_t *b, const char *s);
/* "n/a" for a non-finite v, else v printed with fmt into buf. */
const char *rs_http_num(char *buf, size_t size, const char *fmt, double v);
/* "3h12m", "45s", "2d4h" */
void rs_http_ago(int64_t ms, char *buf, size_t size);
const char *rs_http_decision_colour(rs_decision_t d);

/* An analyst's outcome of one event (<prefix>outcome:<event_id>). */
typedef struct rs_http_outcome_s {
    int present;
    char outcome[16];          /* "fraud" or "genuine"                  */
    double value;              /* the label's value: 1 or 0             */
    int64_t at_ms;             /* when it was recorded (= label time)   */
    char analyst[64];
    char note[256];
    char topic[128];           /* where the Label went                  */
} rs_http_outcome_t;

/* Parse a stored outcome (JSON).  0, or -1 (then o->present = 0). */
int rs_http_outcome_parse(const char *json, size_t len, rs_http_outcome_t *o);
/* Encode an outcome as JSON (with event and entity ids). */
void rs_http_outcome_json(const rs_http_outcome_t *o, const char *event_id,
                          const char *entity_id, rs_http_buf_t *b);

/* What every page's header needs. */
typedef struct rs_http_chrome_s {
    int auth;                  /* a token is configured: sign-out link  */
    const char *q;             /* the search box's value, or NULL       */
} rs_http_chrome_t;

/* Inputs of the case view. */
typedef struct rs_http_case_s {
    const rs_score_t *sc;
    const rs_http_outcome_t *outcome;     /* present = 0: open            */
    /* The entity's events around this one, newest first (this one
     * included when still indexed), with their outcomes. */
    const rs_score_t *const *hist;
    const rs_http_outcome_t *hist_out;
    int nhist;
    int hist_newer;            /* of those, how many are newer than sc  */
    int labels;                /* the label action is configured        */
    const char *labels_topic;
    const char *json_href;     /* raw record link, or NULL              */
} rs_http_case_t;

void rs_http_render_case(const rs_http_chrome_t *ch, const rs_http_case_t *c,
                         rs_http_buf_t *b);

/* A list of records (queue, entity page). */
typedef struct rs_http_list_s {
    const rs_score_t *const *rows;
    const rs_http_outcome_t *outs;
    int n;
    int more;                  /* a next page exists                    */
    int64_t next_t;            /* its cursor: time and id of the last   */
    const char *next_id;       /* row shown                             */
    int capped;                /* the scan stopped at its bound         */
    int scanned;               /* index entries examined                */
} rs_http_list_t;

/* Queue filters, as given (for the form and the links). */
typedef struct rs_http_qf_s {
    char decision[32];         /* "" = review, decline and alert        */
    char since[64], until[64]; /* as typed: ISO, epoch, or "7d" ago     */
    char min_score[32];
    char entity[RS_ID_MAX];
    char status[16];           /* "", "open", "labelled"                */
    int limit;
} rs_http_qf_t;

void rs_http_render_queue(const rs_http_chrome_t *ch, const rs_http_qf_t *qf,
                          const rs_http_list_t *l, rs_http_buf_t *b);
void rs_http_render_entity(const rs_http_chrome_t *ch, const char *entity,
                           const rs_http_list_t *l, int first_page,
                           rs_http_buf_t *b);
/* Sign-in page (also the body of a 401 for pages); next = where to go. */
void rs_http_render_login(const char *next, int failed, rs_http_buf_t *b);
/* "Nothing found for Q" (search). */
void rs_http_render_notfound(const rs_http_chrome_t *ch, const char *q,
                             rs_http_buf_t *b);

/* The page script (/static/rs.js): sign-in, sign-out, the label action. */
extern const char rs_http_js[];

#endif /* RS_HTTP_INT_H */
