# The layering check: every #include "runtime/..." in runtime/ must point at a
# file on the same floor or a lower one. The floors are the list in
# docs/design.md between the "floors:" markers (lowest first), so the document
# and the check cannot disagree. Fails naming the file, the line and both
# floors.
#
#   cmake -DSOURCE_DIR=<repository root> -P test/layering/check_layers.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_layers: pass -DSOURCE_DIR=<repository root>")
endif()

file(READ "${SOURCE_DIR}/docs/design.md" design)
string(FIND "${design}" "<!-- floors: begin -->" begin)
string(FIND "${design}" "<!-- floors: end -->" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "check_layers: docs/design.md has no floors list between "
                      "<!-- floors: begin --> and <!-- floors: end -->")
endif()
string(SUBSTRING "${design}" ${begin} ${end}-${begin} floors_text)
string(REGEX MATCHALL "floor [0-9]+:[^\n]*" floor_lines "${floors_text}")

# entries: "<prefix>=<floor>" for every path of every floor line.
set(entries "")
foreach(line IN LISTS floor_lines)
  string(REGEX REPLACE "floor ([0-9]+):.*" "\\1" floor "${line}")
  string(REGEX REPLACE "floor [0-9]+:" "" paths "${line}")
  string(REGEX MATCHALL "runtime/[^ `]*" paths "${paths}")
  foreach(path IN LISTS paths)
    list(APPEND entries "${path}=${floor}")
  endforeach()
endforeach()
if(NOT entries)
  message(FATAL_ERROR "check_layers: the floors list of docs/design.md names no paths")
endif()

# The floor of `path`: the entry naming it, or else the longest folder prefix.
function(floor_of path out)
  set(best_length -1)
  set(best "")
  foreach(entry IN LISTS entries)
    string(REGEX REPLACE "=[0-9]+$" "" prefix "${entry}")
    string(REGEX REPLACE ".*=" "" floor "${entry}")
    string(LENGTH "${prefix}" length)
    if(prefix STREQUAL path)
      set(${out} ${floor} PARENT_SCOPE)
      return()
    endif()
    if(prefix MATCHES "/$")
      string(FIND "${path}" "${prefix}" at)
      if(at EQUAL 0 AND length GREATER best_length)
        set(best_length ${length})
        set(best ${floor})
      endif()
    endif()
  endforeach()
  set(${out} "${best}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE sources RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/runtime/*.h"
     "${SOURCE_DIR}/runtime/*.cc")
list(SORT sources)
set(violations 0)
foreach(source IN LISTS sources)
  floor_of("${source}" source_floor)
  if(source_floor STREQUAL "")
    message(SEND_ERROR "${source}: on no floor of docs/design.md's floors list; add it "
                       "(or its folder) to the list")
    math(EXPR violations "${violations} + 1")
    continue()
  endif()
  file(STRINGS "${SOURCE_DIR}/${source}" lines)
  set(number 0)
  foreach(line IN LISTS lines)
    math(EXPR number "${number} + 1")
    if(line MATCHES "^#include \"(runtime/[^\"]+)\"")
      set(target "${CMAKE_MATCH_1}")
      floor_of("${target}" target_floor)
      if(target_floor STREQUAL "")
        message(SEND_ERROR "${source}:${number}: includes ${target}, which is on no floor "
                           "of docs/design.md")
        math(EXPR violations "${violations} + 1")
      elseif(target_floor GREATER source_floor)
        message(SEND_ERROR "${source}:${number}: includes ${target} (floor ${target_floor}) "
                           "from floor ${source_floor}; an include may only point at the "
                           "same floor or a lower one (docs/design.md, \"Floors\")")
        math(EXPR violations "${violations} + 1")
      endif()
    endif()
  endforeach()
endforeach()
list(LENGTH sources count)
if(violations GREATER 0)
  message(FATAL_ERROR "check_layers: ${violations} include(s) break the floors")
endif()
message(STATUS "check_layers: ${count} files of runtime/ keep to the floors")
