/* devices.h — what compute devices this build can use: CPU features, CUDA
 * devices (SW_HAVE_CUDA), Vulkan devices (SW_HAVE_VULKAN). Backs --list-devices. */
#ifndef SW_DEVICES_H
#define SW_DEVICES_H

#include <stdio.h>

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Print one line per device, grouped by backend, with why a backend is
 * unavailable when it is. Returns the number of GPU devices found. */
int sw_devices_print(FILE *f);

#ifdef __cplusplus
}
#endif
#endif
