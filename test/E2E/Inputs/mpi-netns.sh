#!/usr/bin/env bash
# Runs a compiled 2-device program as an MPI job across two hosts: two
# network namespaces this script makes (a veth pair, OpenMPI over TCP,
# nothing outside them), rank 0 in the first, rank 1 in the second, and
# prints rank 0's output. mpirun reaches the second "host" through an rsh
# agent that enters its namespace. Removes the namespaces on exit.
#   mpi-netns.sh WORKDIR PROGRAM PROGRAM-ARGS...
set -euo pipefail
work=$1
shift
id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
ns_a=fairkv-a-$id ns_b=fairkv-b-$id
veth_a=fkva$id veth_b=fkvb$id
cleanup() {
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add 10.77.0.1/24 dev "$veth_a"
ip -n "$ns_b" addr add 10.77.0.2/24 dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up
done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# The rsh agent: "agent HOST COMMAND..." runs COMMAND in HOST's namespace.
cat > "$work/agent" <<AGENT
#!/bin/sh
host=\$1
shift
case "\$host" in
  10.77.0.1) ns=$ns_a ;;
  10.77.0.2) ns=$ns_b ;;
  *) echo "mpi-netns agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$work/hosts"

ip netns exec "$ns_a" env OMPI_ALLOW_RUN_AS_ROOT=1 \
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -np 2 --hostfile "$work/hosts" --map-by node \
  --mca plm_rsh_agent "$work/agent" \
  --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
  --mca oob_tcp_if_include 10.77.0.0/24 \
  "$@" --mpi
