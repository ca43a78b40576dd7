// Which sanitizer this translation unit is built with.
#ifndef WEFT_RUNTIME_DETAIL_SANITIZERS_H_
#define WEFT_RUNTIME_DETAIL_SANITIZERS_H_

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#endif  // WEFT_RUNTIME_DETAIL_SANITIZERS_H_
