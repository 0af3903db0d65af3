%% SPDX-License-Identifier: Apache-2.0
%%
%% One half of bench/idle-libs.sh: loads every library of Dir (one module per
%% line of ModulesFile, each made here with an init/0 that loads its NIF),
%% stays idle for Warm seconds, measures Window seconds, and prints one
%% markdown row: CPU of this VM and of every process below it, the VM's
%% threads and descriptors, and its hosts' memory.
-module(idle_libs).
-export([main/1]).

main([Kind, Dir, ModulesFile, Warm, Window]) ->
    {ok, B} = file:read_file(ModulesFile),
    Mods = [binary_to_atom(M) || M <- binary:split(B, <<"\n">>, [global, trim_all])],
    T0 = erlang:monotonic_time(millisecond),
    [load(M, Dir) || M <- Mods],
    LoadS = (erlang:monotonic_time(millisecond) - T0) / 1000,
    %% Every library answers once, then nothing calls.
    [3 = M:add(1, 2) || M <- Mods],
    timer:sleep(list_to_integer(Warm) * 1000),
    Vm = list_to_integer(os:getpid()),
    {VmC0, HostsC0} = cpu(Vm),
    W = list_to_integer(Window),
    timer:sleep(W * 1000),
    {VmC1, HostsC1} = cpu(Vm),
    Hosts = [P || P <- descendants(Vm), comm(P) =:= <<"nifkit-host\n">>],
    {Rss, Pss} = memory(Hosts),
    NH = max(1, length(Hosts)),
    io:format("| ~s | ~.1f | ~.4f | ~.4f | ~b | ~b | ~b | ~b | ~b |~n",
              [Kind, LoadS, (VmC1 - VmC0) / W, (HostsC1 - HostsC0) / W, count(Vm, "task"),
               count(Vm, "fd"), length(Hosts), Rss div NH, Pss div NH]),
    halt(0).

load(M, Dir) ->
    Path = filename:join(Dir, atom_to_list(M)),
    Forms = [{attribute, 1, module, M},
             {attribute, 2, export, [{add, 2}, {echo, 1}, {init, 0}]},
             {function, 4, init, 0,
              [{clause, 4, [], [], [{call, 4, {remote, 4, {atom, 4, erlang}, {atom, 4, load_nif}},
                                     [{string, 4, Path}, {integer, 4, 0}]}]}]},
             {function, 5, add, 2,
              [{clause, 5, [{var, 5, '_A'}, {var, 5, '_B'}], [],
                [{call, 5, {remote, 5, {atom, 5, erlang}, {atom, 5, nif_error}}, [{atom, 5, not_loaded}]}]}]},
             {function, 6, echo, 1,
              [{clause, 6, [{var, 6, '_X'}], [],
                [{call, 6, {remote, 6, {atom, 6, erlang}, {atom, 6, nif_error}}, [{atom, 6, not_loaded}]}]}]}],
    {ok, M, Bin} = compile:forms(Forms),
    {module, M} = code:load_binary(M, Path ++ ".beam", Bin),
    ok = M:init().

%% CPU seconds of the VM, and of every process below it.
cpu(Vm) ->
    {stat_cpu(Vm), lists:sum([stat_cpu(P) || P <- descendants(Vm)])}.

stat_cpu(Pid) ->
    case file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/stat") of
        {ok, B} ->
            [_, After] = string:split(B, ")", trailing),
            F = string:lexemes(After, " "),
            (binary_to_integer(lists:nth(12, F)) + binary_to_integer(lists:nth(13, F))) / 100;
        _ -> 0
    end.

descendants(Root) ->
    {ok, Names} = file:list_dir("/proc"),
    Parents = [{P, ppid(P)} || N <- Names, {P, []} <- [string:to_integer(N)], is_integer(P)],
    below([Root], Parents, []).

below([], _, Acc) -> Acc;
below([P | Rest], Parents, Acc) ->
    Kids = [C || {C, PP} <- Parents, PP =:= P],
    below(Kids ++ Rest, Parents, Kids ++ Acc).

ppid(P) ->
    case file:read_file("/proc/" ++ integer_to_list(P) ++ "/stat") of
        {ok, B} ->
            [_, After] = string:split(B, ")", trailing),
            binary_to_integer(lists:nth(2, string:lexemes(After, " ")));
        _ -> 0
    end.

comm(P) ->
    case file:read_file("/proc/" ++ integer_to_list(P) ++ "/comm") of
        {ok, B} -> B;
        _ -> <<>>
    end.

count(Pid, What) ->
    {ok, L} = file:list_dir("/proc/" ++ integer_to_list(Pid) ++ "/" ++ What),
    length(L).

%% RSS and PSS in KiB, summed over Pids (smaps_rollup).
memory(Pids) ->
    lists:foldl(fun(P, {R, S}) ->
                        case file:read_file("/proc/" ++ integer_to_list(P) ++ "/smaps_rollup") of
                            {ok, B} -> {R + field(B, "Rss"), S + field(B, "Pss")};
                            _ -> {R, S}
                        end
                end, {0, 0}, Pids).

field(B, Name) ->
    case re:run(B, "(?m)^" ++ Name ++ ":\\s+(\\d+)", [{capture, all_but_first, list}]) of
        {match, [N]} -> list_to_integer(N);
        nomatch -> 0
    end.
