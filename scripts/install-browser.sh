#!/bin/sh
# Headless Chromium (Debian package) and a Korean font, for the tests that open the HTML
# report and check that its charts render. Nothing is downloaded outside Debian's mirrors.
set -e
if command -v chromium >/dev/null 2>&1 && fc-list :lang=ko 2>/dev/null | grep -q .; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-nanum >/dev/null
