# webui/assets/assets.cmake - compiles the UI (every file under webui/assets/ but this one)
# into the binary: the host tool embed_assets (webui/tools/embed_assets.c) writes
# web_assets.c, the table behind web_assets() in webui/webui.h, whenever an asset changes.
# Included by webui/CMakeLists.txt. If weir_webui exists already the generated file is added
# to it; either way its path is in WEIR_WEBUI_ASSETS_C and appended to WEIR_WEBUI_ASSET_SRC
# (for an includer that creates the library afterwards).
set(_asset_root ${PROJECT_SOURCE_DIR}/webui/assets)
file(GLOB_RECURSE _assets CONFIGURE_DEPENDS LIST_DIRECTORIES false ${_asset_root}/*)
list(FILTER _assets EXCLUDE REGEX "(/assets\\.cmake$|~$|/\\.[^/]*$)")
list(SORT _assets)

# A host tool that only runs at build time; it gets the project's warnings like any target.
add_executable(weir_embed_assets ${PROJECT_SOURCE_DIR}/webui/tools/embed_assets.c)
target_link_libraries(weir_embed_assets PRIVATE weir_warnings)

set(_assets_c ${CMAKE_CURRENT_BINARY_DIR}/web_assets.c)
add_custom_command(OUTPUT ${_assets_c}
  COMMAND weir_embed_assets ${_assets_c} ${_asset_root} ${_assets}
  DEPENDS weir_embed_assets ${_assets}
  COMMENT "Embedding the UI (webui/assets) into web_assets.c"
  VERBATIM)
set(WEIR_WEBUI_ASSETS_C ${_assets_c})
list(APPEND WEIR_WEBUI_ASSET_SRC ${_assets_c})
if(TARGET weir_webui)
  target_sources(weir_webui PRIVATE ${_assets_c})
endif()
