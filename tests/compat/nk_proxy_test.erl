%% SPDX-License-Identifier: Apache-2.0
%%
%% The proxy NIF as a production runtime, in a real BEAM, with res_nif.c
%% behind it (proxy_beam.sh sets up the wrapped copy and the policy each
%% test needs):
%%
%%   erl -noshell -pa DIR -run nk_proxy_test main TEST
%%
%% Every test ends the VM with status 0 when it held, 1 otherwise.
-module(nk_proxy_test).
-export([main/1]).
-export([resources/0, churn/0, stale/0, crash/0, restart_limit/0, timeout/0, scheduler/0, heartbeat/0,
         result_size/0, args_size/0, atom_budget/0, deep/0,
         heartbeat_idle/0, companions/0, events/0]).

-define(M, nk_res_nif).

main([Test]) ->
    Status = try
                 ok = ?MODULE:(list_to_atom(Test))(),
                 io:format("~s: ok~n", [Test]),
                 0
             catch
                 C:R:St ->
                     io:format(standard_error, "~s failed: ~p:~p~n~p~n", [Test, C, R, St]),
                     1
             end,
    erlang:halt(Status).

%% --- resources --------------------------------------------------------------

resources() ->
    0 = ?M:live(),
    A = ?M:new(7),
    7 = ?M:value(A),
    true = is_reference(A),
    %% The same host object gives the same term, however it comes back.
    A = ?M:echo(A),
    {A, [A], #{k := A}} = ?M:echo({A, [A], #{k => A}}),
    true = ?M:same(A, ?M:echo(A)),
    B = ?M:new(8),
    false = A =:= B,
    false = ?M:same(A, B),
    2 = ?M:live(),
    %% Many round trips keep one object in the host.
    [A = ?M:echo(A) || _ <- lists:seq(1, 1000)],
    2 = ?M:live(),
    %% Dropping B's last reference lets the host's destructor run.
    drop(B),
    ok = wait_live(1),
    %% Objects made and dropped by another process die with it.
    Parent = self(),
    P = spawn(fun() ->
                      Rs = [?M:new(I) || I <- lists:seq(1, 200)],
                      200 = length([R || R <- Rs, is_reference(R)]),
                      Parent ! {made, ?M:live()}
              end),
    receive {made, N} -> true = N >= 201 end,
    wait_dead(P),
    ok = wait_live(1),
    7 = ?M:value(A),
    io:format("identity across calls, and the host's destructors ran after GC~n"),
    ok.

%% B is referred to by this process only: forget it and collect.
drop(B) ->
    _ = ?M:value(B),
    ok.

wait_live(N) -> wait_live(N, 100).
wait_live(N, 0) -> {live, ?M:live(), expected, N};
wait_live(N, Tries) ->
    erlang:garbage_collect(),
    case ?M:live() of
        N -> ok;
        _ -> timer:sleep(50), wait_live(N, Tries - 1)
    end.

wait_dead(P) ->
    Ref = monitor(process, P),
    receive {'DOWN', Ref, process, P, _} -> ok after 5000 -> error(still_alive) end.

%% Eight processes take the same host object over and over (kept/0) and
%% drop it, with garbage collections in between, while others make and drop
%% their own: copies of one handle cross while RELEASEs of it are in
%% flight. No handle may be lost (value/1 would fail) and, at the end, only
%% the objects still referred to may live.
churn() ->
    K = ?M:new(99),
    ok = ?M:keep(K),
    drop(K),
    Parent = self(),
    Ps = [spawn_link(fun() -> churn_loop(500), Parent ! {done, self()} end) || _ <- lists:seq(1, 8)],
    [receive {done, P} -> ok after 60000 -> error(churn_timeout) end || P <- Ps],
    [wait_dead(P) || P <- Ps],
    99 = ?M:value(?M:kept()),
    %% Only the kept object lives: every other was released.
    ok = wait_live(1),
    io:format("churn: 8 x 500 rounds, no handle lost, no object leaked~n"),
    ok.

churn_loop(0) -> ok;
churn_loop(N) ->
    K = ?M:kept(),
    99 = ?M:value(K),
    K = ?M:echo(K),
    B = ?M:new(N),
    {B, K} = ?M:echo({B, K}),
    true = ?M:same(K, ?M:kept()),
    N rem 10 =:= 0 andalso erlang:garbage_collect(),
    churn_loop(N - 1).

%% A resource from a host that has since died is refused with a clear error.
stale() ->
    A = ?M:new(1),
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    {error, {nifkit, stale_resource, <<"resource of host generation 1 used after restart">>}} =
        step(fun() -> ?M:value(A) end),
    B = ?M:new(2),
    2 = ?M:value(B),
    ok.

%% --- supervision -------------------------------------------------------------

crash() ->
    42 = ?M:load_info(),
    [H1] = hosts(),
    {error, {nifkit, crashed, #{library := Lib, message := Msg, signal := 11, syscall := undefined}}} =
        step(fun() -> ?M:crash() end),
    true = is_binary(Lib) andalso is_binary(Msg),
    %% A new host, whose load() had the original load_info.
    ok = ?M:fast(),
    [H2] = hosts(),
    true = H1 =/= H2,
    42 = ?M:load_info(),
    io:format("crash: host ~s replaced by ~s, load_info kept~n", [H1, H2]),
    ok.

%% The policy allows 2 restarts: the third death stops the restarts until
%% the module is loaded again.
restart_limit() ->
    R = ?M:new(5),
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    ok = ?M:fast(),
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    ok = ?M:fast(),
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    {error, {nifkit, restart_limit, #{message := Msg}}} = step(fun() -> ?M:fast() end),
    io:format("restart limit: ~s~n", [Msg]),
    {error, {nifkit, restart_limit, _}} = step(fun() -> ?M:fast() end),
    true = code:delete(?M),
    _ = code:purge(?M),
    {module, ?M} = code:load_file(?M),
    ok = ?M:fast(),
    42 = ?M:load_info(),
    %% A resource of the first load's host is stale for the new load's.
    {error, {nifkit, stale_resource, _}} = step(fun() -> ?M:value(R) end),
    ok.

%% nifkit:subscribe/0 under the nifkit application: every host event of
%% the wrapped library arrives as {nifkit, Event, Info}. The policy allows
%% 2 restarts (as restart_limit's).
events() ->
    {ok, Started} = application:ensure_all_started(nifkit),
    true = lists:member(nifkit, Started),
    ok = nifkit:subscribe(),
    ok = nifkit:subscribe(),            % twice is once
    ok = ?M:fast(),                     % loads the module, and with it the library
    #{host_pid := P1} = event(host_started),
    [P1] = [list_to_integer(H) || H <- hosts()],    % as the VM sees it, outside the host's pid namespace
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    #{library := Lib, reason := crashed, host_pid := P1, message := Msg} = event(host_died),
    true = is_binary(Lib) andalso binary:match(Lib, <<"nk_res_nif">>) =/= nomatch andalso is_binary(Msg),
    #{host_pid := P1, library := Lib} = event(host_stopped),
    ok = ?M:fast(),
    [P2] = [list_to_integer(H) || H <- hosts()],
    #{host_pid := P2, library := Lib} = event(host_started),
    true = P1 =/= P2,
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    ok = ?M:fast(),
    {error, {nifkit, crashed, _}} = step(fun() -> ?M:crash() end),
    #{library := Lib, reason := crashed, max_restarts := 2, period_s := 60, message := _} = event(restart_limit),
    none = duplicate(restart_limit),
    io:format("events: host_died, host_stopped, host_started, restart_limit for ~s~n", [Lib]),
    %% A subscriber that exits is forgotten; the relay lives on.
    Relay = whereis(nifkit_events),
    {Pid, Ref} = spawn_monitor(fun() -> ok = nifkit:subscribe() end),
    receive {'DOWN', Ref, process, Pid, normal} -> ok after 5000 -> error(subscriber_never_ended) end,
    #{} = sys:get_state(nifkit_events),
    false = maps:is_key(Pid, sys:get_state(nifkit_events)),
    Relay = whereis(nifkit_events),
    %% After unsubscribe/0 nothing more arrives: a reload starts a host.
    ok = nifkit:unsubscribe(),
    flush(),
    true = code:delete(?M),
    _ = code:purge(?M),
    {module, ?M} = code:load_file(?M),
    ok = ?M:fast(),
    receive {nifkit, _, _} = Late -> error({after_unsubscribe, Late}) after 1000 -> ok end,
    ok.

event(Name) ->
    receive {nifkit, Name, Info} when is_map(Info) -> Info
    after 10000 -> error({no_event, Name, flush()})
    end.

duplicate(Name) ->
    receive {nifkit, Name, Info} -> {twice, Info} after 500 -> none end.

flush() ->
    receive M -> [M | flush()] after 0 -> [] end.

%% The policy's call timeout is 1 s.
timeout() ->
    {error, {nifkit, timeout, #{message := Msg}}} = step(fun() -> ?M:sleep(5000) end),
    io:format("timeout: ~s~n", [Msg]),
    ok = ?M:fast(),
    ok.

%% A host that stops while idle is found by the heartbeat, killed and
%% replaced, without any call failing for it.
heartbeat() ->
    H1 = ?M:os_pid(),
    ok = ?M:freeze(),
    ok = wait(fun() -> not lists:member(integer_to_list(H1), hosts()) andalso hosts() =/= [] end, 15000),
    ok = ?M:fast(),
    H2 = ?M:os_pid(),
    true = H1 =/= H2,
    io:format("heartbeat: frozen host ~p replaced by ~p~n", [H1, H2]),
    ok.

%% An idle host is pinged less and less often: over 20 s of idle, after
%% the first pings, its threads wake a few times, not ten (one ping every
%% 2 s). The first call after the idle spell brings the short interval back,
%% so a host that stops then is found as fast as a busy one.
heartbeat_idle() ->
    H = ?M:os_pid(),
    timer:sleep(8000),
    W0 = wakeups(H),
    timer:sleep(20000),
    W1 = wakeups(H),
    io:format("heartbeat_idle: host woke ~b times in 20 idle seconds~n", [W1 - W0]),
    true = W1 - W0 =< 4,
    %% Just after the ping at 32 s, the next idle one would come at 64 s.
    timer:sleep(5000),
    ok = ?M:freeze(),
    ok = wait(fun() -> not lists:member(integer_to_list(H), hosts()) andalso hosts() =/= [] end, 8000),
    ok = ?M:fast(),
    ok.

%% Voluntary context switches of every thread of OS process Pid.
wakeups(Pid) ->
    Dir = "/proc/" ++ integer_to_list(Pid) ++ "/task",
    {ok, Tids} = file:list_dir(Dir),
    lists:sum([begin
                   {ok, B} = file:read_file(Dir ++ "/" ++ T ++ "/status"),
                   {match, [N]} = re:run(B, "(?m)^voluntary_ctxt_switches:\\s+(\\d+)",
                                         [{capture, all_but_first, list}]),
                   list_to_integer(N)
               end || T <- Tids]).

%% --- scheduling ----------------------------------------------------------------

%% Run with +S 1: while a call hangs in the host for 2 s, the only normal
%% scheduler keeps running other processes; fast calls mostly finish on it.
scheduler() ->
    1 = erlang:system_info(schedulers_online),
    Self = self(),
    Ticker = spawn(fun() -> tick(Self, 0) end),
    T0 = erlang:monotonic_time(millisecond),
    Caller = spawn(fun() -> Self ! {slept, ?M:sleep(2000)} end),
    receive {slept, ok} -> ok after 10000 -> error(sleep_lost) end,
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    Ticker ! {report, self()},
    Ticks = receive {ticks, T} -> T after 5000 -> error(no_ticks) end,
    io:format("during a ~b ms host call the ticker ticked ~b times~n", [Elapsed, Ticks]),
    wait_dead(Caller),
    true = Elapsed >= 1900,
    true = Ticks >= 200,
    %% The same hang in a function the library flags dirty.
    {ok, DirtyTicks} = ticks_during(fun() -> ?M:dirty_sleep(1000) end),
    true = DirtyTicks >= 100,
    %% Fast calls: dirty I/O schedulers stay mostly idle.
    erlang:system_flag(scheduler_wall_time, true),
    W0 = dirty_io_time(),
    F0 = erlang:monotonic_time(microsecond),
    [ok = ?M:fast() || _ <- lists:seq(1, 2000)],
    F1 = erlang:monotonic_time(microsecond),
    W1 = dirty_io_time(),
    {Active, Total} = diff(W0, W1),
    Share = Active / max(Total, 1),
    io:format("2000 fast calls in ~b us; dirty I/O schedulers active ~.3f of the time~n",
              [F1 - F0, Share]),
    true = Share < 0.25,
    ok.

ticks_during(F) ->
    Self = self(),
    Ticker = spawn(fun() -> tick(Self, 0) end),
    F(),
    Ticker ! {report, self()},
    receive {ticks, T} -> {ok, T} after 5000 -> error(no_ticks) end.

tick(Parent, N) ->
    receive
        {report, To} -> To ! {ticks, N}
    after 1 ->
            tick(Parent, N + 1)
    end.

%% {Active, Total} summed over the dirty I/O schedulers.
dirty_io_time() ->
    S = erlang:statistics(scheduler_wall_time_all),
    Normal = erlang:system_info(schedulers),
    Cpu = erlang:system_info(dirty_cpu_schedulers),
    [{A, T} || {Id, A, T} <- S, Id > Normal + Cpu].

diff(W0, W1) ->
    lists:foldl(fun({{A0, T0}, {A1, T1}}, {A, T}) -> {A + A1 - A0, T + T1 - T0} end,
                {0, 0}, lists:zip(W0, W1)).

%% --- limits --------------------------------------------------------------------

%% max_result_bytes is 1 MiB.
result_size() ->
    Small = ?M:big(1000),
    1000 = byte_size(Small),
    {error, {nifkit, result_too_large, #{message := Msg, size := Size, limit := 1048576}}} =
        step(fun() -> ?M:big(4 * 1024 * 1024) end),
    true = Size > 4 * 1024 * 1024,
    io:format("result_too_large: ~s~n", [Msg]),
    ok = ?M:fast(),
    ok.

%% max_args_bytes is 1 MiB: a larger argument list is refused before it is
%% sent, naming the limit with the size, and the host lives on.
args_size() ->
    Small = binary:copy(<<"a">>, 1000),
    Small = ?M:echo(Small),
    [Host] = hosts(),
    Big = binary:copy(<<"b">>, 2 * 1024 * 1024),
    {error, {nifkit, args_too_large, #{size := Size, limit := 1048576, message := Msg}}} =
        step(fun() -> ?M:echo(Big) end),
    true = Size > 2 * 1024 * 1024,
    io:format("args_too_large: ~s~n", [Msg]),
    Small = ?M:echo(Small),
    [Host] = hosts(),
    ok.

%% max_new_atoms is 50, per host lifetime.
atom_budget() ->
    C0 = erlang:system_info(atom_count),
    Few = ?M:atoms(<<"nk_budget_few_">>, 30),
    30 = length(Few),
    true = lists:all(fun is_atom/1, Few),
    C1 = erlang:system_info(atom_count),
    true = C1 - C0 >= 30,
    %% Existing atoms cost nothing.
    Few = ?M:atoms(<<"nk_budget_few_">>, 30),
    C1b = erlang:system_info(atom_count),
    Refused = step(fun() -> ?M:atoms(<<"nk_budget_many_">>, 40) end),
    C2 = erlang:system_info(atom_count),
    {error, {nifkit, atom_budget, #{message := Msg}}} = Refused,
    io:format("atom_budget: ~s; atoms made meanwhile: ~b~n", [Msg, C2 - C1b]),
    %% The refused atoms were never made.
    true = C2 - C1b < 40,
    {'EXIT', {badarg, _}} = (catch binary_to_existing_atom(<<"nk_budget_many_0">>)),
    %% A new host, a new budget.
    40 = length(?M:atoms(<<"nk_budget_other_">>, 40)),
    ok.

%% --- the sandbox's files ----------------------------------------------------------

%% A shared object beside the library is bound into the sandbox (a companion
%% it may dlopen, as crypto does crypto_callback.so); another library wrapped
%% into the same directory is not, neither its proxy nor its real copy
%% (proxy_beam.sh puts one of each there).
companions() ->
    Dir = os:getenv("NK_RES_NIF_DIR"),
    true = ?M:visible(list_to_binary(Dir ++ "/nk_res_nif.real.so")),
    true = ?M:visible(list_to_binary(Dir ++ "/companion.so")),
    false = ?M:visible(list_to_binary(Dir ++ "/other_nif.so")),
    false = ?M:visible(list_to_binary(Dir ++ "/other_nif.real.so")),
    ok.

%% --- deep terms ------------------------------------------------------------------

%% Terms nested as deep as BEAM takes them cross the proxy both ways and are
%% walked in the host (copy, compare, hash, encode, iolist) with BEAM's own
%% BIFs as the expected side: no depth limit that BEAM does not have.
deep() ->
    Kinds = [list, tuple, map, improper],
    [deep_check(K, D) || D <- [100000, 1000000], K <- Kinds],
    %% An ordinary iolist built as [Acc, Chunk], a million chunks.
    IoList = lists:foldl(fun(I, Acc) -> [Acc, integer_to_binary(I rem 10)] end, [], lists:seq(1, 1000000)),
    Flat = iolist_to_binary(IoList),
    Flat = ?M:iolist(IoList),
    IoList = ?M:echo(IoList),
    %% A resource at the bottom of a deep term keeps its identity both ways.
    R = ?M:new(7),
    Deep = nest(tuple, R, 100000),
    Back = ?M:echo(Deep),
    R = bottom(tuple, Back, 100000),
    7 = ?M:value(bottom(tuple, Back, 100000)),
    true = ?M:same(R, bottom(tuple, Back, 100000)),
    ok = ?M:fast(),
    ok.

deep_check(Kind, Depth) ->
    T = nest(Kind, leaf, Depth),
    U = nest(Kind, other, Depth),
    Want = fun(F, Got) -> {Kind, Depth, F, true} = {Kind, Depth, F, Got} end,
    Want(echo, T =:= ?M:echo(T)),
    Want(copy, T =:= ?M:copy(T)),
    Want(to_binary, term_to_binary(T) =:= ?M:to_binary(T)),
    Want(phash2, erlang:phash2(T) =:= ?M:phash2(T)),
    Want(compare, sign(?M:compare(T, U)) =:= order(T, U)),
    Want(compare_equal, 0 =:= ?M:compare(T, ?M:echo(T))),
    io:format("deep ~p ~b: ok~n", [Kind, Depth]).

nest(Kind, Leaf, N) -> lists:foldl(fun(_, A) -> wrap(Kind, A) end, Leaf, lists:seq(1, N)).

wrap(list, A) -> [A];
wrap(tuple, A) -> {A, x};
wrap(map, A) -> #{k => A};
wrap(improper, A) -> [A | x].

bottom(_, T, 0) -> T;
bottom(tuple, {A, x}, N) -> bottom(tuple, A, N - 1).

sign(X) when X < 0 -> -1;
sign(0) -> 0;
sign(_) -> 1.

order(A, B) when A < B -> -1;
order(A, B) when A == B -> 0;
order(_, _) -> 1.

%% --- helpers ---------------------------------------------------------------------

step(F) ->
    try {ok, F()} catch C:R -> {C, R} end.

%% Process ids of this VM's hosts.
hosts() -> nk_test_hosts:hosts().

wait(F, T) when T =< 0 -> {timeout, F()};
wait(F, T) ->
    case F() of
        true -> ok;
        false -> timer:sleep(50), wait(F, T - 50)
    end.
