# One declarative call per library and per test (STYLE.md rule 11).
#
#   tandem_cc_library(NAME name SRCS a.cc b.cc [HDRS ...] DEPS dep1 dep2)
#   tandem_cc_test(NAME name_test SRCS name_test.cc DEPS lib [LABELS gpu] [ARGS ...])
include_guard(GLOBAL)

function(tandem_cc_library)
  cmake_parse_arguments(T "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  add_library(${T_NAME} STATIC ${T_SRCS} ${T_HDRS})
  target_link_libraries(${T_NAME} PUBLIC ${T_DEPS})
endfunction()

function(tandem_cc_test)
  if(NOT TANDEM_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${T_NAME} PRIVATE
    TANDEM_SHARED_DIR="${TANDEM_SHARED_DIR}"
    TANDEM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    TANDEM_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
