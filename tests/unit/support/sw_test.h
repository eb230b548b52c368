/* sw_test.h — helpers shared by the unit tests (linked into every test_*). */
#ifndef SW_TEST_H
#define SW_TEST_H

#include <stdint.h>

/* A deterministic LCG: the same seed gives the same numbers on every platform,
 * so a failing case can be replayed. The state is the caller's. */
typedef struct sw_test_rng {
    uint64_t s;
} sw_test_rng;

double sw_test_urand(sw_test_rng *r); /* uniform in [0, 1) */
float sw_test_nrand(sw_test_rng *r);  /* roughly normal (sum of 4 uniforms), sd ~1 */

#endif
