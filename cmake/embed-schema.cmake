# Writes OUT, a C source holding every production step of schema hub
# (schema/NNN_name.sql, in name order) as bytes, so that the binary carries
# the exact text `armonia-hub migrate` applies and whose checksums the hub
# checks at start (hub/schema.c). Run by the build whenever a step changes:
#   cmake -DSCHEMA_DIR=... -DOUT=... -P embed-schema.cmake
file(GLOB steps RELATIVE ${SCHEMA_DIR} ${SCHEMA_DIR}/[0-9][0-9][0-9]_*.sql)
list(SORT steps)
set(body "/* Generated from the steps in schema/ by cmake/embed-schema.cmake: do not edit. */\n")
string(APPEND body "#include \"schema.h\"\n\n")
set(table "")
set(i 0)
foreach(f ${steps})
  file(READ ${SCHEMA_DIR}/${f} hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
  string(APPEND body "static const char step${i}[] = {\n${bytes}0};\n\n")
  string(REGEX REPLACE "\\.sql$" "" name "${f}")
  string(APPEND table "    {\"${name}\", step${i}, ${len}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "const struct schema_step schema_steps[] = {\n${table}};\n")
string(APPEND body "const unsigned schema_n_steps = ${i};\n")
file(WRITE ${OUT}.tmp "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
file(REMOVE ${OUT}.tmp)
