/* features_report.c -- what a machine report (maintenance mode) does to
 * the features: one rule for serve (scoring/alerts.c) and the offline
 * replay (rs_features_replay with `maintenance`, `riskstream features
 * --maintenance`), so exported rows equal served ones.  See features.h. */
#include "features/features_int.h"

#include <string.h>

rs_features_report_t rs_features_report_kind(const rs_label_t *lb) {
    if (lb->value > 0) return RS_FEATURES_REPORT_FAILURE;
    if (!strcmp(lb->event_id, lb->entity_id)) return RS_FEATURES_REPORT_REPAIR;
    return RS_FEATURES_REPORT_NONE;
}

rs_features_report_t rs_features_report(rs_features_t *f,
                                        const rs_label_t *lb) {
    rs_features_report_t k = rs_features_report_kind(lb);
    /* a failure or a repair: a new life; never a label-aware feature (a
     * machine's count of its own failures would pass the label on) */
    if (k != RS_FEATURES_REPORT_NONE) rs_features_reset(f, lb->entity_id);
    return k;
}
