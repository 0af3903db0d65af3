%% SPDX-License-Identifier: Apache-2.0
%% Module upgrade and purge of a NIF library, as BEAM does them: run once
%% with the library loaded by BEAM itself and once wrapped, the printed
%% results must be the same (upgrade_beam.sh compares them).
-module(nk_upgrade_test).
-export([main/1, jiffy_reload/1]).

%% nk_upg, version Vsn: its on_load loads Lib with load_info Vsn and keeps
%% what load_nif said.
nk_upg(Lib, Vsn) ->
    nk_upg(Lib, Vsn, true).

%% Without res_value/1 the module's functions no longer match the
%% library's: BEAM refuses the library.
nk_upg(Lib, Vsn, Complete) ->
    Src = ["-module(nk_upg).\n",
           "-export([history/0, priv/0, make_res/1, ", [ "res_value/1, " || Complete], "version/0]).\n",
           "-on_load(init/0).\n",
           "init() -> R = erlang:load_nif(\"", Lib, "\", ", integer_to_list(Vsn), "),\n",
           "          persistent_term:put(nk_upg_last, R), R.\n",
           "history() -> erlang:nif_error(not_loaded).\n",
           "priv() -> erlang:nif_error(not_loaded).\n",
           "make_res(_) -> erlang:nif_error(not_loaded).\n",
           [ "res_value(_) -> erlang:nif_error(not_loaded).\n" || Complete],
           "version() -> ", integer_to_list(Vsn), ".\n"],
    {ok, Toks, _} = erl_scan:string(lists:flatten(Src)),
    Forms = split_forms(Toks, [], []),
    {ok, nk_upg, Bin} = compile:forms(Forms, [binary]),
    Bin.

split_forms([], [], Acc) -> lists:reverse(Acc);
split_forms([{dot, _} = D | T], Cur, Acc) ->
    {ok, F} = erl_parse:parse_form(lists:reverse([D | Cur])),
    split_forms(T, [], [F | Acc]);
split_forms([H | T], Cur, Acc) -> split_forms(T, [H | Cur], Acc).

load(Lib, Vsn) ->
    load(Lib, Vsn, true).

load(Lib, Vsn, Complete) ->
    persistent_term:erase(nk_upg_last),
    R = code:load_binary(nk_upg, "nk_upg.erl", nk_upg(Lib, Vsn, Complete)),
    {R, persistent_term:get(nk_upg_last, none)}.

main([Lib]) ->
    L1 = load(Lib, 1),
    H1 = catch nk_upg:history(),
    Res = catch nk_upg:make_res(42),
    %% v2 while v1 is still there: BEAM's upgrade, or its refusal.
    L2 = load(Lib, 2),
    H2 = catch nk_upg:history(),
    V = catch nk_upg:res_value(Res),
    Vsn2 = nk_upg:version(),
    %% purging v1 unloads it; v2 serves on.
    P1 = code:purge(nk_upg),
    H3 = catch nk_upg:history(),
    Priv = catch nk_upg:priv(),
    %% an upgrade the library refuses: the new code does not load, the
    %% old stays current.
    L3 = load(Lib, 99),
    Vsn3 = nk_upg:version(),
    H4 = catch nk_upg:history(),
    %% a new version whose functions do not match the library's: refused
    %% as BEAM refuses it, the old code serving on.
    L5 = load(Lib, 5, false),
    Vsn5 = nk_upg:version(),
    H45 = catch nk_upg:history(),
    %% deleted and purged, then loaded afresh: load() again.
    P2 = {code:delete(nk_upg), code:purge(nk_upg)},
    L4 = load(Lib, 4),
    H5 = catch nk_upg:history(),
    V2 = catch nk_upg:res_value(nk_upg:make_res(7)),
    io:format("~p.~n", [[{load1, L1}, {h1, H1}, {load2, L2}, {h2, H2}, {res_after_upgrade, V},
                         {version, Vsn2}, {purge, P1}, {h3, H3}, {priv, Priv}, {load99, L3},
                         {version_after_refusal, Vsn3}, {h4, H4}, {load_mismatch, L5},
                         {version_after_mismatch, Vsn5}, {h45, H45}, {delete_purge, P2}, {load4, L4},
                         {h5, H5}, {res, V2}]]),
    halt(0).

%% jiffy, wrapped, reloaded and purged while 4 processes call it: every
%% call answers, before, during and after.
jiffy_reload([]) ->
    Self = self(),
    Doc = <<"{\"k\": [1, 2.5, null, \"v\"]}">>,
    Want = jiffy:decode(Doc, [return_maps]),
    Workers = [spawn_link(fun() -> worker(Self, Doc, Want, 0, 0) end) || _ <- lists:seq(1, 4)],
    timer:sleep(200),
    Reloads = [reload_jiffy() || _ <- lists:seq(1, 3)],
    timer:sleep(200),
    [W ! {stop, Self} || W <- Workers],
    Counts = [receive {done, W, C, E} -> {C, E} end || W <- Workers],
    Calls = lists:sum([C || {C, _} <- Counts]),
    Errors = lists:sum([E || {_, E} <- Counts]),
    io:format("reloads=~p~ncalls_ok=~p~nerrors=~p~nafter=~p~n",
              [Reloads, Calls > 0, Errors, jiffy:decode(Doc, [return_maps]) =:= Want]),
    halt(0).

reload_jiffy() ->
    {module, jiffy} = code:load_file(jiffy),
    soft_purge(jiffy, 200).

soft_purge(_, 0) -> not_purged;
soft_purge(M, N) ->
    case code:soft_purge(M) of
        true -> purged;
        false -> timer:sleep(10), soft_purge(M, N - 1)
    end.

worker(Parent, Doc, Want, Calls, Errors) ->
    receive
        {stop, Parent} -> Parent ! {done, self(), Calls, Errors}
    after 0 ->
        case catch jiffy:decode(Doc, [return_maps]) of
            Want -> worker(Parent, Doc, Want, Calls + 1, Errors);
            Other -> io:format(standard_error, "call failed: ~p~n", [Other]),
                     worker(Parent, Doc, Want, Calls, Errors + 1)
        end
    end.
