# cmake -DINPUT=relay.bpf.o -DOUTPUT=relay_object.cpp -P embed.cmake: the object as a byte array
# (bpf/relay_object.h declares it).
file(READ ${INPUT} _hex HEX)
string(LENGTH "${_hex}" _length)
math(EXPR _bytes "${_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _array "${_hex}")
file(WRITE ${OUTPUT} "// Generated from relay.bpf.o by bpf/embed.cmake.\n#include \"bpf/relay_object.h\"\n\nnamespace pgnap::bpf {\nnamespace {\nalignas(8) const unsigned char kObject[] = {${_array}};\n}\nstd::span<const unsigned char> relay_object() { return {kObject, ${_bytes}}; }\n}  // namespace pgnap::bpf\n")
