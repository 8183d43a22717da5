# Shared by run.sh (the fleet demo) and integrations/ansible/tests/run.sh (its test): the tools
# a fleet run needs on this machine, and an OpenSSH server on 127.0.0.1 that stands in for the
# three site servers. Source it; it defines functions only.

# ansible-core in a virtual environment (kept under target/, made once): prints its bin folder.
fleet_ansible() {
    local repo=$1 venv=${RUNBOOK_ANSIBLE_VENV:-$1/target/ci-peers/ansible}
    if [ ! -x "$venv/bin/ansible-playbook" ]; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'ansible-core>=2.15,<2.20' >&2
    fi
    echo "$venv/bin"
}

# A throwaway folder in FLEET_WORK (kept with KEEP=1), removed at exit with the SSH server that
# fleet_sshd starts there stopped.
fleet_workdir() {
    FLEET_WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    FLEET_SSHD_PID=
    trap fleet_cleanup EXIT
}

fleet_cleanup() {
    if [ -n "$FLEET_SSHD_PID" ]; then kill "$FLEET_SSHD_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-}" = 1 ]; then echo "kept $FLEET_WORK" >&2; else rm -rf "$FLEET_WORK"; fi
}

# The runbook program and the simulated server, built once.
fleet_build() {
    (cd "$1" && cargo build --quiet --bin runbook --example simulated-server)
}

# sshd on a free port of 127.0.0.1 with throwaway host and client keys under DIR/ssh, for the
# user running this; writes DIR/connection.yml (the inventory's connection settings, for
# `-e @DIR/connection.yml`) and sets FLEET_SSHD_PID.
fleet_sshd() {
    local dir=$1/ssh sshd port
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    if [ ! -x "$sshd" ]; then
        echo "an OpenSSH server is needed (Debian: apt-get install openssh-server)" >&2
        return 2
    fi
    mkdir -p "$dir" && chmod 700 "$dir"
    ssh-keygen -q -t ed25519 -N '' -C fleet-host -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -C fleet-client -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CONF
    # Privilege separation needs this folder when sshd runs as root.
    if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
    "$sshd" -f "$dir/sshd_config" -D -e 2> "$dir/sshd.log" &
    FLEET_SSHD_PID=$!
    echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$dir/host_key.pub")" > "$dir/known_hosts"
    cat > "$1/connection.yml" <<CONF
ansible_host: 127.0.0.1
ansible_port: $port
ansible_user: $(id -un)
ansible_ssh_private_key_file: $dir/client_key
ansible_ssh_common_args: -o UserKnownHostsFile=$dir/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
CONF
    # Ready when it answers (at most about 10 seconds).
    local i
    for i in $(seq 100); do
        if ssh -o BatchMode=yes -o ConnectTimeout=2 -o UserKnownHostsFile="$dir/known_hosts" -o IdentitiesOnly=yes \
            -i "$dir/client_key" -p "$port" "$(id -un)@127.0.0.1" true 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$FLEET_SSHD_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "the SSH server did not start:" >&2
    cat "$dir/sshd.log" >&2
    return 1
}

# A simulated Apex One server for each site, under ROOT/<site>, with that site's layout and
# install password.
fleet_sites() {
    local repo=$1 root=$2 server=$1/target/debug/examples/simulated-server
    "$server" make "$root/tokyo" fresh 'Tokyo-Install-2019!' 8378 > /dev/null
    "$server" make "$root/osaka" upgraded 'Osaka-Install-2017!' 8000 > /dev/null
    "$server" make "$root/nagoya" fresh 'Nagoya-Install-2021!' 8378 > /dev/null
}
