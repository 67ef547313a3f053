# docs.cmake - run by the build (cmake -P) once armonia-hub is linked:
# writes the man page, its ENVIRONMENT section taken from the binary
# (--print-man-environment), gzipped as Debian installs man pages, and the
# example environment file (--print-env-example). Both come from the one
# table of settings in hub/config.c, so they cannot fall out of step.
#
#   cmake -DHUB_BIN=... -DTEMPLATE=docs/armonia-hub.8.in -DVERSION=x.y.z
#         -DOUT_DIR=... -P packaging/docs.cmake

execute_process(COMMAND ${HUB_BIN} --print-man-environment
                OUTPUT_VARIABLE environment RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${HUB_BIN} --print-man-environment failed: ${rc}")
endif()
file(READ ${TEMPLATE} page)
string(STRIP "${environment}" environment)
string(REPLACE "@ENVIRONMENT@" "${environment}" page "${page}")
string(REPLACE "@HUB_VERSION@" "${VERSION}" page "${page}")
file(WRITE ${OUT_DIR}/armonia-hub.8 "${page}")
execute_process(COMMAND gzip -9nf ${OUT_DIR}/armonia-hub.8 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${OUT_DIR}/armonia-hub.8 failed: ${rc}")
endif()

execute_process(COMMAND ${HUB_BIN} --print-env-example
                OUTPUT_FILE ${OUT_DIR}/env RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${HUB_BIN} --print-env-example failed: ${rc}")
endif()
