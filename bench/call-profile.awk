# SPDX-License-Identifier: Apache-2.0
# Groups `perf report --sort comm,sym` lines into the steps of a wrapped
# call (see call-profile.sh); n calls took wall nanoseconds.
function step(comm, sym) {
        if (comm == "swapper") return "idle (no thread ran)"
        host = comm ~ /nifkit-host/
        if (sym ~ /^0x/ || sym == "") return host ? "host: unresolved" : "VM: BEAM's JIT code (the loop)"
        if (sym ~ /^(add|trivial_)/) return "the NIF itself"
        if (host) {
                if (sym ~ /etf|decode|encode|nk_env|nk_term|arena|atom|intern/) return "host: decode args, encode result"
                if (sym ~ /nk_shm|shm_serve|wait|futex|sched_yield|pause|clock|vdso/) return "host: wait for and publish frames"
                if (sym ~ /nk_server|call|reply/) return "host: serve the call"
                return "host: other"
        }
        if (sym ~ /term_to_binary|enc_term|erts_encode|request_build|caller_pid|add_piece|t2b/) return "VM: encode args"
        if (sym ~ /binary_to_term|dec_term|erts_decode|pool_|decode_result|b2t/) return "VM: decode result"
        if (sym ~ /nk_shm|shm_chan|call_start|take_slot|shm_poll|nk_host_call|futex|sched_yield|clock|vdso|spin/) return "VM: publish and wait (shm)"
        if (sym ~ /malloc|free|memmove|memcpy|memset|alcu/) return "VM: memory (malloc, free, copies)"
        if (sym ~ /^proxy|^request_|^call_|^finish|^res_|^enif_|^gen_/) return "VM: proxy NIF and enif_ calls"
        return "VM: BEAM (scheduler, the loop, GC)"
}
/%/ {
        pct = $1; sub(/%/, "", pct)
        comm = $2
        sym = $0; sub(/^.*\] /, "", sym)
        s = step(comm, sym)
        share[s] += pct
        if (!(s in first)) { order[++k] = s; first[s] = 1 }
        total += pct
}
END {
        cpus = ENVIRON["NK_CPUS"] ? ENVIRON["NK_CPUS"] : 2
        per = wall / n
        printf("%d calls in %.3f s: %.2f µs per call of wall time, %d CPUs sampled\n\n", n, wall / 1e9, per / 1000, cpus)
        printf("| step | share of samples | ns per call |\n| --- | ---: | ---: |\n")
        cmd = "sort -t'|' -k3 -gr"
        for (i = 1; i <= k; i++) {
                s = order[i]
                printf("| %s | %.1f%% | %.0f |\n", s, share[s], share[s] / 100 * cpus * per) | cmd
        }
        close(cmd)
}
