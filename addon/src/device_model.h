// The part of a model that lives in a device's memory, laid out and uploaded in the
// order of the VRAM plan (vram_plan.h): one allocation, carved in device pieces.
#pragma once

#include <vector>

#include "device.h"
#include "vram_plan.h"

namespace rs {

struct DeviceLayer {
  const float *attn_norm = nullptr, *ffn_norm = nullptr;  // [d]
  Weight wq, wk, wv, wo;
  Weight fc1, fc2;      // predictor (empty unless resident)
  DeviceNeurons hot;    // hot neurons: blocks [gate | up | down], slot <-> neuron maps
};

// Working buffers (workspace_parts, in that order).
struct DeviceWorkspace {
  float *x = nullptr, *xb = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr;
  int32_t *pos = nullptr, *seq = nullptr;
  uint8_t *act_q = nullptr;
  float *z1 = nullptr, *scores = nullptr;
  uint64_t *nmask = nullptr;
  int32_t *hot_list = nullptr;
  uint64_t *hot_mask = nullptr;
  int64_t *counts = nullptr;
  float *hot_h = nullptr, *hot_part = nullptr, *hot_y = nullptr, *cold_y = nullptr, *logits = nullptr;
  float *att_part = nullptr;
  int64_t hot_part_floats = 0;
  int att_part_states = 0;
};

class DeviceModel {
 public:
  // Uploads the model's resident part with placement.hot[l] as layer l's hot neurons
  // (plan: the fixed part; its hot and ffn get filled in).
  DeviceModel(Device &dev, const Model &m, const DeviceShape &shape, VramPlan plan, const Placement &placement);
  ~DeviceModel();
  DeviceModel(const DeviceModel &) = delete;

  std::vector<DeviceLayer> layers;
  const float *output_norm = nullptr;
  Weight output;
  KvView kv;
  DeviceWorkspace ws;
  VramPlan plan;  // as allocated

 private:
  Device &dev_;
  uint8_t *arena_ = nullptr;
};

}  // namespace rs
