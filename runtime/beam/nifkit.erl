%% SPDX-License-Identifier: Apache-2.0
%% nifkit:stats(): what the NIF hosts on this machine are doing, as
%% `nifkit status` shows it, for code that runs in the VM (a health check,
%% a metrics exporter). Read from the state files libnifkit writes at most
%% once a second, so the numbers are about a second old at most.
-module(nifkit).
-export([stats/0]).
-on_load(init/0).

-type host_stats() :: #{library := binary(),
                        runtime_pid := pos_integer(),
                        host_pid := pos_integer() | undefined,
                        started := non_neg_integer(),
                        calls := non_neg_integer(),
                        errors := #{atom() | binary() => non_neg_integer()},
                        restarts := non_neg_integer(),
                        last_reason := atom() | binary() | undefined,
                        p50_us := non_neg_integer(),
                        p99_us := non_neg_integer(),
                        memory_peak := non_neg_integer()}.
-export_type([host_stats/0]).

init() ->
    Dir = filename:dirname(code:which(?MODULE)),
    %% Built: the NIF beside the .beam. Installed as an application: priv/.
    Candidates = [filename:join(Dir, "nifkit_stats"),
                  filename:join([Dir, "..", "priv", "nifkit_stats"])],
    load(Candidates).

load([Path | Rest]) ->
    case erlang:load_nif(Path, 0) of
        ok -> ok;
        {error, {load_failed, _}} when Rest =/= [] -> load(Rest);
        Error -> Error
    end.

%% One map per library per runtime (a VM running a wrapped library, or
%% another libnifkit user), this VM's own included.
-spec stats() -> [host_stats()].
stats() ->
    erlang:nif_error(not_loaded).
