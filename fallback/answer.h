/* answer.h — is a short answer right? Used to label local answers against a
 * reference (spillway-router label) and to compare a local answer with the
 * cloud's (shadow sampling).
 *
 * A reference that is a number (e.g. "2190", "-3.5", "1,024") is matched
 * numerically: the first number in the answer that is not copied from the
 * prompt must equal it (numbers of the prompt are skipped, because small
 * models restate the question before answering; when the reference itself is
 * in the prompt, nothing is skipped). Any other reference is matched as
 * normalized text: lower case, every run of characters that are not ASCII
 * letters or digits a single space; the reference must occur in the answer
 * as whole words. */
#ifndef SW_ANSWER_H
#define SW_ANSWER_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* prompt may be NULL (nothing to skip). */
bool sw_answer_match(const char *prompt, const char *answer, const char *reference);

/* Normalize text as described above into a malloc'd string (NULL: out of memory). */
char *sw_answer_normalize(const char *text);

/* Parse text as exactly one number (surrounding spaces allowed). */
bool sw_answer_number(const char *text, double *out);

#ifdef __cplusplus
}
#endif
#endif
