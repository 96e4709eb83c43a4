// The kernel relay's BPF object file (relay.bpf.c compiled for the BPF target), as built with
// this pgnap.
#pragma once

#include <span>

namespace pgnap::bpf {

[[nodiscard]] std::span<const unsigned char> relay_object();

}  // namespace pgnap::bpf
