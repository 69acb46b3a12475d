// Run an edgenas artifact's model.so with TVM's C++ runtime (no Python):
//   edgenas_run model.so input.f32 output.f32
// reads the input as raw float32 (EDGENAS_INPUT0_SIZE values, C order), runs the Relax VM's `main` once on
// the CPU and writes the outputs as raw float32, one after another in the model's order
// (edgenas_output_sizes[i] values each). Shapes come from model.h.
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model.h"

static_assert(EDGENAS_INPUT0_DTYPE_CODE == kDLFloat && EDGENAS_INPUT0_DTYPE_BITS == 32,
              "this example reads float32 input");

namespace ffi = tvm::ffi;

namespace {

constexpr int kPooledAllocator = 2;  // the Relax VM's allocator types: 1 naive, 2 pooled

// Host memory for tensors this program creates, aligned as TVM's kernels prefer.
struct CPUAlloc {
  void AllocData(DLTensor* t) {
    size_t bytes = (ffi::GetDataSize(*t) + 63) / 64 * 64;
    t->data = std::aligned_alloc(64, bytes);
    if (t->data == nullptr) throw std::runtime_error("out of memory");
  }
  void FreeData(DLTensor* t) { std::free(t->data); }
};

std::vector<float> ReadFloats(const std::string& path, size_t count) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  size_t bytes = static_cast<size_t>(in.tellg());
  if (bytes != count * sizeof(float))
    throw std::runtime_error(path + " has " + std::to_string(bytes) + " bytes, the model takes " +
                             std::to_string(count) + " float32 values (" +
                             std::to_string(count * sizeof(float)) + " bytes)");
  std::vector<float> values(count);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(bytes));
  return values;
}

ffi::Function Get(const ffi::Module& mod, const char* name) {
  ffi::Optional<ffi::Function> f = mod->GetFunction(name);
  if (!f.has_value()) throw std::runtime_error(std::string("the module has no function ") + name);
  return f.value();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " model.so input.f32 output.f32\n";
    return 2;
  }
  try {
    std::vector<float> input = ReadFloats(argv[2], EDGENAS_INPUT0_SIZE);

    // model.so holds the Relax VM executable; the VM runs it on the CPU (device type, id, allocator).
    ffi::Module lib = ffi::Module::LoadFromFile(argv[1]);
    ffi::Module vm = Get(lib, "vm_load_executable")().cast<ffi::Module>();
    Get(vm, "vm_initialization")(static_cast<int>(kDLCPU), 0, kPooledAllocator);

    DLDevice cpu{kDLCPU, 0};
    ffi::Tensor x = ffi::Tensor::FromNDAlloc(CPUAlloc(), ffi::ShapeView(edgenas_input0_shape, EDGENAS_INPUT0_NDIM),
                                             DLDataType{kDLFloat, 32, 1}, cpu);
    std::memcpy(x.data_ptr(), input.data(), input.size() * sizeof(float));

    // one output is a tensor; several are an array of tensors, in the model's order
    ffi::Any result = Get(vm, "main")(x);
    std::vector<ffi::Tensor> outputs;
    if (EDGENAS_NUM_OUTPUTS == 1) {
      outputs.push_back(result.cast<ffi::Tensor>());
    } else {
      for (const ffi::Tensor& t : result.cast<ffi::Array<ffi::Tensor>>()) outputs.push_back(t);
    }
    if (outputs.size() != static_cast<size_t>(EDGENAS_NUM_OUTPUTS))
      throw std::runtime_error("model.so returned " + std::to_string(outputs.size()) + " outputs, model.h says " +
                               std::to_string(EDGENAS_NUM_OUTPUTS) + "; was model.h written for this model.so?");

    std::ofstream out(argv[3], std::ios::binary);
    for (size_t i = 0; i < outputs.size(); ++i) {
      const ffi::Tensor& y = outputs[i];
      if (y.numel() != edgenas_output_sizes[i] || !y.IsContiguous() || y.device().device_type != kDLCPU ||
          y.dtype().code != kDLFloat || y.dtype().bits != 32)
        throw std::runtime_error(std::string("output ") + edgenas_output_names[i] + " is not " +
                                 std::to_string(edgenas_output_sizes[i]) +
                                 " contiguous float32 values on the CPU; was model.h written for this model.so?");
      out.write(static_cast<const char*>(y.data_ptr()), edgenas_output_sizes[i] * sizeof(float));
    }
    if (!out) throw std::runtime_error(std::string("cannot write ") + argv[3]);
  } catch (const std::exception& e) {  // ffi::Error is a std::exception
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
