#!/bin/sh
# Builds a simulated Apex One server under ROOT, shaped like the real install folders:
#   ROOT/Program Files (x86)/Trend Micro/Apex One     (layout "fresh")
#   ROOT/Program Files (x86)/Trend Micro/OfficeScan   (layout "upgraded": from Virus Buster Corp. 11 / XG)
# Usage: make-server.sh ROOT [fresh|upgraded] [PASSWORD] [BUILD]
set -eu
root=$1
layout=${2:-fresh}
password=${3:-apex-demo-password}
build=${4:-8378}
case "$layout" in
    fresh) name="Apex One" ;;
    upgraded) name="OfficeScan" ;;
    *) echo "layout must be fresh or upgraded" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
install="$root/Program Files (x86)/Trend Micro/$name"
tool="$install/PCCSRV/Admin/Utility/CertificateManager"
mkdir -p "$install/AuthCertBackup" "$tool" "$root/C"
printf 'SIMULATED-APEX-ONE-AUTH-CERT %s\nissued-to: apex-one.example.invalid\n' "$layout" > "$install/AuthCertBackup/OfficeScanAuth.dat"
cp "$here/CertificateManager.exe" "$tool/CertificateManager.exe"
chmod +x "$tool/CertificateManager.exe"
printf '%s' "$password" > "$tool/.password"
printf '%s\n' "$build" > "$tool/.build"
echo "$install"
