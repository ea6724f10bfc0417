# packaging.cmake -- install() rules and the Debian package (CPack, DEB).
# Included from the top-level CMakeLists.txt.
#
#   cmake --install build [--prefix /usr/local]    binary, config, unit, docs
#   ops/package.sh                                  build-pkg/riskstream_*.deb
#
# Layout (prefix /usr, as in the package):
#   /usr/bin/riskstream
#   /etc/riskstream/riskstream.yaml            site config (conffile)
#   /etc/default/riskstream                    secrets as env vars (0600, conffile)
#   /lib/systemd/system/riskstream.service     the unit
#   /usr/share/doc/riskstream/                 README, docs/, sample config
#   /usr/share/riskstream/monitoring/          Grafana dashboard, alert rules
include(GNUInstallDirs)

set(RS_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(RS_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/riskstream)
set(RS_DEFAULTDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default)
set(RS_DOCDIR ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/riskstream)
set(RS_DATADIR ${CMAKE_INSTALL_FULL_DATAROOTDIR}/riskstream)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(RS_UNITDIR /lib/systemd/system)          # Debian 12 (bookworm) place
else()
  set(RS_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
configure_file(${CMAKE_SOURCE_DIR}/ops/packaging/riskstream.service.in
               ${CMAKE_BINARY_DIR}/riskstream.service @ONLY)

install(TARGETS riskstream RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ops/packaging/riskstream.yaml DESTINATION ${RS_CONFDIR})
install(FILES ops/packaging/riskstream.default DESTINATION ${RS_DEFAULTDIR}
        RENAME riskstream PERMISSIONS OWNER_READ OWNER_WRITE)
install(FILES ${CMAKE_BINARY_DIR}/riskstream.service DESTINATION ${RS_UNITDIR})
install(FILES README.md docs/riskstream.sample.yaml DESTINATION ${RS_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${RS_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md" PATTERN "*.svg")
install(DIRECTORY ops/monitoring/ DESTINATION ${RS_DATADIR}/monitoring
        FILES_MATCHING PATTERN "*.json" PATTERN "*.yml"
        PATTERN "*.test.yml" EXCLUDE)

# ---------------------------------------------------------------- CPack
set(CPACK_PACKAGE_NAME riskstream)
set(CPACK_PACKAGE_VENDOR "riskstream")
set(CPACK_PACKAGE_CONTACT "riskstream maintainers <riskstream@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "real-time streaming risk scoring (Kafka, Redis, online learning)")
set(CPACK_PACKAGE_DESCRIPTION
    "Scores entity-keyed events from Kafka with sliding-window features and an online-learning model; publishes scores, decisions and explanations to Kafka and Redis.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_STRIP_FILES TRUE)
set(CPACK_GENERATOR DEB)
# The package holds what `cmake --install` installs: build it with prefix
# /usr (ops/package.sh), which also puts the config in /etc.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binary's shared libraries (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "kcat, prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/ops/packaging/conffiles
    ${CMAKE_SOURCE_DIR}/ops/packaging/postinst
    ${CMAKE_SOURCE_DIR}/ops/packaging/prerm
    ${CMAKE_SOURCE_DIR}/ops/packaging/postrm)
include(CPack)
