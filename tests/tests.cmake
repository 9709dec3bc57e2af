# SPDX-License-Identifier: Apache-2.0
# Test wiring, included from the top CMakeLists.txt. Every file that follows the naming rule is
# picked up, so adding a test means adding a file:
#   tests/unit/test_<module>.c          cmocka program, label "unit"
#   tests/integration/test_<name>.c     cmocka program against the real cluster, label "integration"
#   tests/integration/test_<name>.sh    bash script against the real cluster, label "integration"
#   tests/fuzz/fuzz_<parser>.c          libFuzzer target; without AIT_FUZZ it is linked with a
#                                       standalone driver and run over its corpus, label "fuzz"
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

file(GLOB AIT_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${AIT_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE ait PkgConfig::CMOCKA)
  add_test(NAME unit_${name} COMMAND ${name})
  set_tests_properties(unit_${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "AIT_SOURCE_DIR=${CMAKE_SOURCE_DIR};AIT_BUILD_DIR=${CMAKE_BINARY_DIR}")
endforeach()

# Source checks: banned functions and formatting.
add_test(NAME lint_checksrc COMMAND bash ${CMAKE_SOURCE_DIR}/hack/checksrc.sh)
set_tests_properties(lint_checksrc PROPERTIES LABELS "unit;lint" TIMEOUT 120)

# Fuzz targets.
file(GLOB AIT_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${AIT_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  if(AIT_FUZZ)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/standalone.c)
  endif()
  target_link_libraries(${name} PRIVATE ait)
  string(REPLACE "fuzz_" "" corpus ${name})
  add_test(NAME fuzz_${name} COMMAND ${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${corpus})
  set_tests_properties(fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endforeach()

# Integration tests share one real control plane per ctest run (a CTest fixture), each test in
# its own namespaces.
option(AIT_INTEGRATION "Run the integration tests against a real local control plane" ON)
if(AIT_INTEGRATION)
  set(AIT_TEST_CLUSTER_DIR ${CMAKE_BINARY_DIR}/cluster)
  set(AIT_TEST_ENV
    "AIT_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "AIT_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "AIT_CLUSTER_DIR=${AIT_TEST_CLUSTER_DIR}"
    "KUBECONFIG=${AIT_TEST_CLUSTER_DIR}/kubeconfig")
  add_test(NAME cluster_up COMMAND bash ${CMAKE_SOURCE_DIR}/hack/cluster.sh up
           --dir ${AIT_TEST_CLUSTER_DIR} --name test)
  set_tests_properties(cluster_up PROPERTIES FIXTURES_SETUP cluster LABELS integration
                       TIMEOUT 180)
  add_test(NAME cluster_down COMMAND bash ${CMAKE_SOURCE_DIR}/hack/cluster.sh down
           --dir ${AIT_TEST_CLUSTER_DIR} --name test)
  set_tests_properties(cluster_down PROPERTIES FIXTURES_CLEANUP cluster LABELS integration)

  file(GLOB AIT_INTEG_C CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.c)
  foreach(src ${AIT_INTEG_C})
    get_filename_component(name ${src} NAME_WE)
    add_executable(integ_${name} ${src})
    target_link_libraries(integ_${name} PRIVATE ait PkgConfig::CMOCKA)
    add_test(NAME integration_${name} COMMAND integ_${name})
    set_tests_properties(integration_${name} PROPERTIES LABELS integration TIMEOUT 900
      FIXTURES_REQUIRED cluster ENVIRONMENT "${AIT_TEST_ENV}")
  endforeach()
  file(GLOB AIT_INTEG_SH CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.sh)
  foreach(src ${AIT_INTEG_SH})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME integration_${name} COMMAND bash ${src})
    set_tests_properties(integration_${name} PROPERTIES LABELS integration TIMEOUT 900
      FIXTURES_REQUIRED cluster ENVIRONMENT "${AIT_TEST_ENV}")
  endforeach()
endif()
