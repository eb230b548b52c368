/* sw_test.c — helpers shared by the unit tests. */
#include "sw_test.h"

double sw_test_urand(sw_test_rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(r->s >> 11) * 0x1.0p-53;
}

float sw_test_nrand(sw_test_rng *r) {
    double s = 0;
    for (int i = 0; i < 4; i++) s += sw_test_urand(r) - 0.5;
    return (float)(s * 1.7);
}
