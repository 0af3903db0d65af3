%% SPDX-License-Identifier: Apache-2.0
%% @doc What nifkit offers code in the VM.
%%
%% `stats/0': what the NIF hosts on this machine are doing, as `nifkit
%% status' shows it (a health check, a metrics exporter). Read from the
%% state files libnifkit writes at most once a second, so the numbers are
%% about a second old at most.
%%
%% `subscribe/0': the host events of every wrapped library in this VM as
%% messages, so that an application can log or alert on them. Needs the
%% nifkit application (`application:ensure_all_started(nifkit)', which
%% subscribe/0 does itself).
-module(nifkit).
-export([stats/0, subscribe/0, unsubscribe/0]).
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
-type event() :: host_started | host_died | host_stopped | restart_limit.
-type event_info() :: #{library := binary(),
                        host_pid => pos_integer(),
                        reason => atom(),
                        message => binary(),
                        atom() => term()}.
-export_type([host_stats/0, event/0, event_info/0]).

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

%% @doc Delivers `{nifkit, Event, Info}' to the calling process for every
%% host event of a wrapped library in this VM until unsubscribe/0 or the
%% caller's exit: `host_started' (Info has `host_pid'), `host_died'
%% (`reason', the same atom a failing call raises, and `message'),
%% `host_stopped', and `restart_limit' (the library gave up; `reason' and
%% `message' of its last death, `max_restarts', `period_s'). Every Info has
%% `library', the real library's path. Starts the nifkit application when
%% it is not running.
-spec subscribe() -> ok | {error, term()}.
subscribe() ->
    case application:ensure_all_started(nifkit) of
        {ok, _} -> nifkit_events:subscribe(self());
        {error, _} = Error -> Error
    end.

%% @doc Stops the messages subscribe/0 started.
-spec unsubscribe() -> ok.
unsubscribe() ->
    case whereis(nifkit_events) of
        undefined -> ok;
        _ -> nifkit_events:unsubscribe(self())
    end.
