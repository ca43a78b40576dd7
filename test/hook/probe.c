/* A blocking read in code the program did not compile itself: built once as a
 * shared library the test links, once as a module it dlopens. Its read must
 * reach the hook like the program's own. */
#include <unistd.h>

ssize_t WEFT_PROBE_NAME(int fd, char* byte) { return read(fd, byte, 1); }
