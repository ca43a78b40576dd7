// The names of the scheduling policies (RuntimeOptions::scheduling_policy,
// --weft_scheduling_policy), on the lowest floor so that option checking can
// name them; the policies themselves are in
// runtime/scheduling_group/policy/.
#ifndef WEFT_RUNTIME_DETAIL_SCHEDULING_POLICIES_H_
#define WEFT_RUNTIME_DETAIL_SCHEDULING_POLICIES_H_

#include <string>

namespace weft::detail {

inline constexpr const char* kSchedulingPolicies[] = {"weft", "v1", "v2"};

inline bool IsSchedulingPolicy(const std::string& name) {
  for (const char* known : kSchedulingPolicies) {
    if (name == known) return true;
  }
  return false;
}

// "weft, v1, v2": for error messages.
inline std::string SchedulingPolicyList() {
  std::string list;
  for (const char* known : kSchedulingPolicies) {
    if (!list.empty()) list += ", ";
    list += known;
  }
  return list;
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_SCHEDULING_POLICIES_H_
