/* vk_device.c — Vulkan physical-device discovery (see vk_device.h). */
#include "vk_device.h"

#include <stdio.h>
#include <stdlib.h>
#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#endif
#include <string.h>
#include <vulkan/vulkan.h>

const char *sw_vk_kind_name(sw_vk_device_kind k) {
    switch (k) {
    case SW_VK_INTEGRATED: return "integrated GPU";
    case SW_VK_DISCRETE: return "discrete GPU";
    case SW_VK_VIRTUAL: return "virtual GPU";
    case SW_VK_CPU: return "CPU";
    default: return "other";
    }
}

static sw_vk_device_kind kind_of(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return SW_VK_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return SW_VK_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return SW_VK_VIRTUAL;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return SW_VK_CPU;
    default: return SW_VK_OTHER;
    }
}

static bool has_extension(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkExtensionProperties *ext = calloc(n, sizeof *ext);
    if (!ext) return false;
    bool found = false;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, ext) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(ext[i].extensionName, name);
    free(ext);
    return found;
}

/* VK_NV_cooperative_matrix: whether the device offers the one shape
 * matmul_coop.comp uses (16x16x16, f16 A/B, f32 C/D, subgroup scope). */
static bool coop_nv_shape(VkInstance inst, VkPhysicalDevice pd) {
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0) return false;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p) return false;
    for (uint32_t i = 0; i < n; i++) p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    bool found = false;
    VkResult r = get(pd, &n, p);
    if (r == VK_SUCCESS || r == VK_INCOMPLETE)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 &&
                    p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return found;
}

static void describe(VkInstance inst, VkPhysicalDevice pd, sw_vk_device_info *d) {
    /* extension structs are chained only where the extension exists */
    bool coop_nv = has_extension(pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    VkPhysicalDeviceCooperativeMatrixPropertiesNV pcm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, .pNext = coop_nv ? &pcm : NULL};
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                             .pNext = &drv};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &sg};
    vkGetPhysicalDeviceProperties2(pd, &props);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", props.properties.deviceName);
    d->kind = kind_of(props.properties.deviceType);
    d->vendor_id = props.properties.vendorID;
    d->device_id = props.properties.deviceID;
    d->api_version = props.properties.apiVersion;
    snprintf(d->driver, sizeof d->driver, "%s %s", drv.driverName, drv.driverInfo);
    d->subgroup_size = sg.subgroupSize;
    d->subgroup_arithmetic = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);

    VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = coop_nv ? &fcm : NULL};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &feats);
    d->shader_float16 = f12.shaderFloat16;
    d->shader_int8 = f12.shaderInt8;
    d->shader_int16 = feats.features.shaderInt16;
    d->storage_16bit = f11.storageBuffer16BitAccess;
    d->storage_8bit = f12.storageBuffer8BitAccess;
    d->cooperative_matrix = has_extension(pd, "VK_KHR_cooperative_matrix");
    d->vulkan_memory_model = f12.vulkanMemoryModel;
    d->coop_nv_f16_16x16x16 = coop_nv && fcm.cooperativeMatrix &&
                              (pcm.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                              coop_nv_shape(inst, pd);

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    for (uint32_t i = 0; i < mem.memoryHeapCount; i++)
        if ((mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mem.memoryHeaps[i].size > d->device_local_bytes)
            d->device_local_bytes = mem.memoryHeaps[i].size;
}

/* Sanitizer builds only: Mesa 22.3's lavapipe makes a one-time allocation in
 * vkEnumeratePhysicalDevices that is reachable while the driver is loaded and
 * turns into a 128-byte LeakSanitizer report (all frames <unknown module>) once
 * the loader unloads the ICD at the last vkDestroyInstance. Pinning the driver
 * keeps it reachable, so LSan still checks everything else in every process
 * that probes Vulkan (tools, server, tests). See tests/lsan-vulkan.supp. On
 * systems without lavapipe the dlopen fails and nothing happens. */
static void pin_lavapipe_under_asan(void) {
#if defined(__SANITIZE_ADDRESS__)
    (void)dlopen("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
#endif
}

sw_status sw_vk_list_devices(sw_vk_device_info **out, int *n_out, sw_err *err) {
    pin_lavapipe_under_asan();
    *out = NULL;
    *n_out = 0;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "spillway",
                             .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
    VkInstance inst;
    VkResult r = vkCreateInstance(&ci, NULL, &inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return sw_err_set(err, SW_E_NOT_FOUND,
                          "vulkan: no Vulkan 1.2 driver (install mesa-vulkan-drivers or the GPU vendor's driver)");
    if (r != VK_SUCCESS)
        return sw_err_set(err, SW_E_BACKEND, "vulkan: vkCreateInstance failed (VkResult %d)", (int)r);

    sw_status st = SW_OK;
    uint32_t n = 0;
    VkPhysicalDevice *pds = NULL;
    r = vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (r != VK_SUCCESS || n == 0) {
        st = sw_err_set(err, SW_E_NOT_FOUND, "vulkan: no Vulkan device found (VkResult %d)", (int)r);
        goto done;
    }
    pds = calloc(n, sizeof *pds);
    sw_vk_device_info *devs = calloc(n, sizeof *devs);
    if (!pds || !devs) {
        free(devs);
        st = sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory listing %u devices", n);
        goto done;
    }
    r = vkEnumeratePhysicalDevices(inst, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(devs);
        st = sw_err_set(err, SW_E_BACKEND, "vulkan: vkEnumeratePhysicalDevices failed (%d)", (int)r);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) describe(inst, pds[i], &devs[i]);
    *out = devs;
    *n_out = (int)n;
done:
    free(pds);
    vkDestroyInstance(inst, NULL);
    return st;
}

int sw_vk_preferred_device(const sw_vk_device_info *devs, int n) {
    static const sw_vk_device_kind order[] = {SW_VK_DISCRETE, SW_VK_INTEGRATED, SW_VK_VIRTUAL,
                                              SW_VK_CPU, SW_VK_OTHER};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        for (int i = 0; i < n; i++)
            if (devs[i].kind == order[k]) return i;
    return n > 0 ? 0 : -1;
}

bool sw_vk_device_fast(const sw_vk_device_info *d) {
    return d->storage_16bit && d->storage_8bit && d->shader_float16;
}

bool sw_vk_preferred_device_fast(void) {
    sw_vk_device_info *devs = NULL;
    int n = 0;
    sw_err err = {{0}};
    if (sw_vk_list_devices(&devs, &n, &err) != SW_OK) return false;
    int i = sw_vk_preferred_device(devs, n);
    bool fast = i >= 0 && sw_vk_device_fast(&devs[i]);
    free(devs);
    return fast;
}
