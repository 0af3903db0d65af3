%% SPDX-License-Identifier: Apache-2.0
%% What a NIF call costs through nifkit, next to the alternatives, in one
%% run; prints a markdown table. Driven by bench/run-call-bench.sh, which
%% builds, wraps and sets the environment:
%%
%%   NK_BENCH_TRIVIAL_DIR   the built trivial_nif.so (used in this VM)
%%   NK_BENCH_WRAPPED_DIR   trivial_nif.so wrapped by `nifkit wrap`
%%   NK_BENCH_WRAPPED_JIFFY ebin/ of a copy of jiffy whose priv/jiffy.so is wrapped
%%   NK_BENCH_PORT          bench/trivial_port
%%   NK_BENCH_EBIN          where call_bench.beam and trivial_nif.beam are
%%   NK_BENCH_N             trivial calls per case (default 100000)
%%
%% In-process cases run in this VM; wrapped cases run in a peer node that
%% has the wrapped copies first on its code path (jiffy's module name is
%% fixed, so the two jiffys cannot share a VM). Each sample is one call,
%% timed with erlang:monotonic_time/1 around it; each case is warmed first.
-module(call_bench).
-export([main/0, wrapped_cases/1, add/2]).

add(A, B) -> A + B.

main() ->
    N = list_to_integer(os:getenv("NK_BENCH_N", "100000")),
    Ebin = os:getenv("NK_BENCH_EBIN"),
    Docs = docs(),
    %% (a) and in-process jiffy, here
    InNif = measure(N, fun() -> trivial_nif:add(1, 2) end),
    InJiffy = jiffy_cases(Docs),
    %% (c) a port program doing the same addition
    Port = open_port({spawn_executable, os:getenv("NK_BENCH_PORT")}, [{packet, 4}, binary]),
    PortStats = measure(N, fun() ->
                                   Port ! {self(), {command, <<1:32, 2:32>>}},
                                   receive {Port, {data, <<3:32>>}} -> ok end
                           end),
    port_close(Port),
    %% (d) erpc to a peer node on this machine, the same addition there
    {ok, Peer, PeerNode} = peer:start_link(#{name => peer:random_name(call_bench_erpc),
                                             args => ["-pa", Ebin]}),
    Erpc = measure(N, fun() -> 3 = erpc:call(PeerNode, call_bench, add, [1, 2]) end),
    peer:stop(Peer),
    %% (b) and wrapped jiffy, in a peer whose code path has the wrapped copies
    {ok, W, WNode} = peer:start_link(#{name => peer:random_name(call_bench_wrapped),
                                       args => ["-pa", os:getenv("NK_BENCH_WRAPPED_JIFFY"),
                                                "-pa", Ebin],
                                       env => [{"NK_BENCH_TRIVIAL_DIR",
                                                os:getenv("NK_BENCH_WRAPPED_DIR")}]}),
    {WNif, WJiffy} = erpc:call(WNode, ?MODULE, wrapped_cases, [N], infinity),
    peer:stop(W),
    report(N, InNif, WNif, PortStats, Erpc, InJiffy, WJiffy),
    halt(0).

%% Runs in the wrapped peer.
wrapped_cases(N) ->
    %% The wrapped library must really be the proxy: its host is our child.
    true = is_wrapped(),
    {measure(N, fun() -> trivial_nif:add(1, 2) end), jiffy_cases(docs())}.

is_wrapped() ->
    Hosts = os:cmd("pgrep -P " ++ os:getpid() ++ " nifkit-host"),
    3 = trivial_nif:add(1, 2),
    <<"[1]">> = jiffy:encode([1]),
    length(string:lexemes(os:cmd("pgrep -P " ++ os:getpid() ++ " nifkit-host"), "\n")) >= 2
        orelse Hosts =/= "".

%% JSON documents of about 1 KB, 100 KB and 10 MB, the same bytes in every VM.
docs() ->
    [{Label, doc(Size), Iter} || {Label, Size, Iter} <- [{"1 KB", 1024, 5000},
                                                         {"100 KB", 100 * 1024, 300},
                                                         {"10 MB", 10 * 1024 * 1024, 15}]].

doc(Size) ->
    Item = fun(I) ->
                   io_lib:format("{\"id\":~b,\"name\":\"user-~b\",\"tags\":[\"a\",\"b\"],"
                                 "\"score\":~b.5,\"active\":true}", [I, I, I])
           end,
    One = iolist_size(Item(1000)) + 1,
    Count = max(1, Size div One),
    iolist_to_binary(["[", lists:join(",", [Item(1000 + I) || I <- lists:seq(1, Count)]), "]"]).

jiffy_cases(Docs) ->
    [begin
         Term = jiffy:decode(Doc),
         Dec = measure(Iter, fun() -> jiffy:decode(Doc) end),
         Enc = measure(Iter, fun() -> jiffy:encode(Term) end),
         {Label, byte_size(Doc), Dec, Enc}
     end || {Label, Doc, Iter} <- Docs].

measure(N, F) ->
    [F() || _ <- lists:seq(1, max(10, min(1000, N div 10)))],
    Samples = list_to_tuple(lists:sort(samples(N, F, []))),
    Len = tuple_size(Samples),
    #{n => Len,
      p50 => element(max(1, (Len + 1) div 2), Samples) / 1000,
      p99 => element(max(1, ceil(Len * 0.99)), Samples) / 1000}.

samples(0, _, Acc) -> Acc;
samples(N, F, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    F(),
    T1 = erlang:monotonic_time(nanosecond),
    samples(N - 1, F, [T1 - T0 | Acc]).

report(N, InNif, WNif, Port, Erpc, InJiffy, WJiffy) ->
    ok = io:setopts([{encoding, unicode}]),
    #{p50 := Base50, p99 := Base99} = InNif,
    io:format("| trivial call, `add(1, 2)`, ~b calls each | p50 µs | p99 µs | p50 vs (a) | p99 vs (a) |~n"
              "| --- | ---: | ---: | ---: | ---: |~n", [N]),
    [io:format("| ~s | ~s | ~s | ~s | ~s |~n",
               [Name, num(P50), num(P99), ratio(P50, Base50), ratio(P99, Base99)])
     || {Name, #{p50 := P50, p99 := P99}} <-
            [{"(a) NIF in the VM", InNif},
             {"(b) the same NIF wrapped by nifkit", WNif},
             {"(c) port program, `{packet, 4}`", Port},
             {"(d) `erpc:call` to a peer node", Erpc}]],
    io:format("~n| jiffy | document | in the VM p50 / p99 µs | wrapped p50 / p99 µs | p50 ratio | p99 ratio |~n"
              "| --- | ---: | ---: | ---: | ---: | ---: |~n", []),
    [begin
         [io:format("| ~s | ~s (~b bytes, ~b calls) | ~s / ~s | ~s / ~s | ~s | ~s |~n",
                    [Op, Label, Bytes, maps:get(n, I), num(maps:get(p50, I)), num(maps:get(p99, I)),
                     num(maps:get(p50, W)), num(maps:get(p99, W)),
                     ratio(maps:get(p50, W), maps:get(p50, I)), ratio(maps:get(p99, W), maps:get(p99, I))])
          || {Op, I, W} <- [{"decode", IDec, WDec}, {"encode", IEnc, WEnc}]]
     end || {{Label, Bytes, IDec, IEnc}, {Label, Bytes, WDec, WEnc}} <- lists:zip(InJiffy, WJiffy)],
    ok.

num(X) when X >= 100 -> integer_to_list(round(X));
num(X) when X >= 10 -> float_to_list(X, [{decimals, 1}]);
num(X) -> float_to_list(X, [{decimals, 2}]).

ratio(_, B) when B == 0 -> "-";
ratio(A, B) -> [float_to_list(A / B, [{decimals, 1}]), "×"].
