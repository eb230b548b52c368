# Source on the GPU machine: make the libraries unpacked by scripts/gpu/build.sh
# (in /tmp/swdeps) visible to the compiler and to the programs, and point the
# Vulkan loader at NVIDIA's driver.
P=/tmp/swdeps
export CMAKE_PREFIX_PATH="$P/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export LD_LIBRARY_PATH="$P/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$P/usr/bin:$PATH"
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
