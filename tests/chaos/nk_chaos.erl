%% SPDX-License-Identifier: Apache-2.0
%%
%% The chaos run: Callers Erlang processes call a wrapped res_nif.c with
%% random terms (large binaries and deep nesting among them) for Seconds
%% seconds, or until Calls calls, while a killer SIGKILLs the host or makes
%% it segfault every 50-500 ms.
%%
%%   erl -noshell -pa DIR -run nk_chaos main Seconds Calls Callers
%%
%% It holds when:
%%   - every answer is the right one (echo gives back its argument =:=);
%%   - no call hangs: each has a watchdog of ?WATCHDOG ms;
%%   - every failure is {nifkit, crashed, Info} with the signal of something
%%     the killer did: 9 after a SIGKILL, 11 after a segfault, and only if
%%     such a fault was done during that call (never protocol, exited,
%%     system or a missing signal);
%%   - afterwards the VM's descriptors and threads are back to what they
%%     were with one host running, and its memory near where it started;
%% and then writes the host pids it saw to HostsFile, so that the script
%% can check that none outlives the VM. Ends the VM with 0 when it held.
-module(nk_chaos).
-export([main/1]).

-define(M, nk_res_nif).
-define(WATCHDOG, 30000).

main([Seconds, Calls, Callers, HostsFile]) ->
    Status = try run(list_to_integer(Seconds), list_to_integer(Calls), list_to_integer(Callers), HostsFile)
             catch C:R:St ->
                     io:format(standard_error, "chaos failed: ~p:~p~n~p~n", [C, R, St]),
                     1
             end,
    erlang:halt(Status).

run(Seconds, MaxCalls, NCallers, HostsFile) ->
    rand:seed(exsss, erlang:phash2(os:timestamp())),
    ok = ?M:fast(),
    [_] = host_pids(),
    Fds0 = count("fd"),
    Threads0 = count("task"),
    erlang:garbage_collect(),
    Mem0 = erlang:memory(total),
    Faults = ets:new(faults, [public, bag]),
    Counter = counters:new(6, [write_concurrency]),      % calls, ok, failed, faults, failed 9, failed 11
    Seen = ets:new(seen, [public, set]),
    Deadline = erlang:monotonic_time(millisecond) + Seconds * 1000,
    Self = self(),
    process_flag(trap_exit, true),
    Stop = fun() -> erlang:monotonic_time(millisecond) > Deadline orelse counters:get(Counter, 1) >= MaxCalls end,
    Killer = spawn_link(fun() -> killer(Stop, Faults, Counter, Seen, Self) end),
    Pids = [spawn_link(fun() -> caller(Stop, Faults, Counter, Self) end) || _ <- lists:seq(1, NCallers)],
    [done(P) || P <- Pids],
    Killer ! stop,
    done(Killer),
    %% The last fault may have been a moment ago: the host is back before
    %% anything is counted.
    ok = wait(fun() -> try ?M:fast() =:= ok catch _:_ -> false end end, 10000),
    [Last] = host_pids(),
    ets:insert(Seen, {Last}),
    Report = #{calls => counters:get(Counter, 1), answered => counters:get(Counter, 2),
               failed => counters:get(Counter, 3), faults => counters:get(Counter, 4),
               faults_by_signal => reasons(Faults),
               failed_by_signal => #{9 => counters:get(Counter, 5), 11 => counters:get(Counter, 6)}},
    io:format("chaos: ~p~n", [Report]),
    true = counters:get(Counter, 2) > 0,
    ok = wait(fun() -> count("fd") =< Fds0 andalso count("task") =< Threads0 end, 10000),
    erlang:garbage_collect(),
    [erlang:garbage_collect(P) || P <- processes()],
    Mem1 = erlang:memory(total),
    io:format("chaos: fds ~b -> ~b, threads ~b -> ~b, memory ~b KiB -> ~b KiB~n",
              [Fds0, count("fd"), Threads0, count("task"), Mem0 div 1024, Mem1 div 1024]),
    true = Mem1 < Mem0 + 64 * 1024 * 1024,
    ok = file:write_file(HostsFile, [[integer_to_list(P), "\n"] || {P} <- ets:tab2list(Seen)]),
    0.

%% A caller or the killer finished, or the reason it failed.
done(P) ->
    receive
        {done, P} -> ok;
        {'EXIT', P, Why} when Why =/= normal -> error(Why)
    end.

%% --- the callers ------------------------------------------------------------------

caller(Stop, Faults, Counter, Parent) ->
    case Stop() of
        true -> Parent ! {done, self()};
        false ->
            T = term(),
            T0 = erlang:monotonic_time(microsecond),
            {Ref, Mon} = spawn_monitor_call(T),
            Result = receive {Ref, R} -> R;
                         {'DOWN', Mon, process, _, Why} -> {down, Why}
                     after ?WATCHDOG -> exit({hung_call, erlang:external_size(T)})
                     end,
            erlang:demonitor(Mon, [flush]),
            T1 = erlang:monotonic_time(microsecond),
            counters:add(Counter, 1, 1),
            check(T, Result, T0, T1, Faults, Counter),
            caller(Stop, Faults, Counter, Parent)
    end.

spawn_monitor_call(T) ->
    Self = self(),
    Ref = make_ref(),
    {_, Mon} = spawn_monitor(fun() -> Self ! {Ref, try {ok, ?M:echo(T)} catch C:R -> {C, R} end} end),
    {Ref, Mon}.

check(T, {ok, Got}, _, _, _, Counter) ->
    case Got =:= T of
        true -> counters:add(Counter, 2, 1);
        false -> exit({wrong_answer, erlang:external_size(T)})
    end;
check(_, {error, {nifkit, crashed, #{signal := Sig}}}, T0, T1, Faults, Counter) when Sig =:= 9; Sig =:= 11 ->
    %% Something the killer did, with this signal, between the call's start
    %% and its answer (with a margin for the killer's own clock).
    Done = [At || {S, At} <- ets:lookup(Faults, Sig), At >= T0 - 1000000, At =< T1 + 1000000, S =:= Sig],
    case Done of
        [] -> exit({crashed_without_fault, Sig});
        _ ->
            counters:add(Counter, 3, 1),
            counters:add(Counter, if Sig =:= 9 -> 5; true -> 6 end, 1)
    end;
check(_, Other, _, _, _, _) ->
    exit({wrong_reason, Other}).

%% --- the killer ---------------------------------------------------------------------

killer(Stop, Faults, Counter, Seen, Parent) ->
    receive stop -> Parent ! {done, self()}
    after 50 + rand:uniform(450) ->
            case host_pids() of
                [Host] ->
                    ets:insert(Seen, {Host}),
                    case rand:uniform(4) of
                        1 ->
                            %% A segfault in the NIF, from a call of its own.
                            ets:insert(Faults, {11, erlang:monotonic_time(microsecond)}),
                            {error, {nifkit, crashed, #{signal := 11}}} =
                                try {ok, ?M:crash()} catch C:R -> {C, R} end;
                        _ ->
                            ets:insert(Faults, {9, erlang:monotonic_time(microsecond)}),
                            os:cmd("kill -9 " ++ integer_to_list(Host))
                    end,
                    counters:add(Counter, 4, 1);
                _ ->
                    ok          % between two hosts
            end,
            case Stop() of
                true -> receive stop -> Parent ! {done, self()} end;
                false -> killer(Stop, Faults, Counter, Seen, Parent)
            end
    end.

%% The process that runs the NIF: the innermost nifkit-host below this VM.
host_pids() ->
    Lines = string:split(os:cmd("ps -e -o pid=,ppid=,comm="), "\n", all),
    Procs = [{list_to_integer(P), list_to_integer(PP), C}
             || L <- Lines, [P, PP, C] <- [string:lexemes(L, " ")]],
    Below = below([list_to_integer(os:getpid())], Procs, []),
    Hosts = [P || {P, _, "nifkit-host"} <- Procs, lists:member(P, Below)],
    [P || P <- Hosts, not lists:any(fun({_, PP, "nifkit-host"}) -> PP =:= P; (_) -> false end, Procs)].

below([], _, Acc) -> Acc;
below([P | Rest], Procs, Acc) ->
    Kids = [C || {C, PP, _} <- Procs, PP =:= P],
    below(Kids ++ Rest, Procs, Kids ++ Acc).

reasons(Faults) ->
    lists:foldl(fun({S, _}, M) -> maps:update_with(S, fun(N) -> N + 1 end, 1, M) end, #{}, ets:tab2list(Faults)).

count(What) ->
    {ok, L} = file:list_dir("/proc/self/" ++ What),
    length(L).

wait(F, T) when T =< 0 -> {timeout, F()};
wait(F, T) ->
    case F() of
        true -> ok;
        _ -> timer:sleep(50), wait(F, T - 50)
    end.

%% --- random terms -------------------------------------------------------------------

term() ->
    case rand:uniform(100) of
        N when N =< 2 -> deep(rand:uniform(100000));
        N when N =< 4 -> binary:copy(<<(rand:uniform(255))>>, rand:uniform(2 * 1024 * 1024));
        _ -> term(4)
    end.

term(0) -> leaf();
term(D) ->
    case rand:uniform(7) of
        1 -> [term(D - 1) || _ <- lists:seq(1, rand:uniform(6) - 1)];
        2 -> list_to_tuple([term(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        3 -> maps:from_list([{leaf(), term(D - 1)} || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        4 -> [term(D - 1) | leaf()];
        _ -> leaf()
    end.

leaf() ->
    case rand:uniform(12) of
        1 -> rand:uniform(1 bsl 27) - (1 bsl 26);
        2 -> rand:uniform(1 bsl 200) * (1 - 2 * rand:uniform(2) + 2);
        3 -> rand:uniform() * 1.0e10;
        4 -> lists:nth(rand:uniform(4), [ok, error, '', 'ünïcødé']);
        5 -> crypto_free_bytes(rand:uniform(300));
        6 -> <<(rand:uniform(255)):(rand:uniform(15))>>;
        7 -> self();
        8 -> make_ref();
        9 -> fun erlang:abs/1;
        10 -> "a string";
        11 -> [];
        _ -> {}
    end.

crypto_free_bytes(N) -> list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, N)]).

deep(N) ->
    Wrap = lists:nth(rand:uniform(4), [fun(A) -> [A] end, fun(A) -> {A, x} end,
                                        fun(A) -> #{k => A} end, fun(A) -> [A | x] end]),
    lists:foldl(fun(_, A) -> Wrap(A) end, leaf(), lists:seq(1, N)).
