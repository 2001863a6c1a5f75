# webui/embed.cmake - cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
# Writes a C file defining `const char NAME[]` with the bytes of IN and a final NUL.
file(READ ${IN} _hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _arr "${_hex}")
file(WRITE ${OUT} "/* generated from ${IN} by webui/embed.cmake; do not edit */\n"
  "extern const char ${NAME}[];\nconst char ${NAME}[] = {${_arr}0x00};\n")
