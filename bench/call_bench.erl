%% SPDX-License-Identifier: Apache-2.0
%% What a NIF call costs through nifkit, next to the alternatives, in one
%% run; prints markdown tables. Driven by bench/run-call-bench.sh, which
%% builds, wraps and sets the environment:
%%
%%   NK_BENCH_TRIVIAL_DIR   the built trivial_nif.so (used in this VM)
%%   NK_BENCH_WRAPPED_DIR   trivial_nif.so wrapped by `nifkit wrap` (transport shm)
%%   NK_BENCH_SOCKET_DIR    the same wrapped with "transport": "socket"
%%   NK_BENCH_WRAPPED_JIFFY ebin/ of a copy of jiffy whose priv/jiffy.so is wrapped
%%   NK_BENCH_PORT          bench/trivial_port
%%   NK_BENCH_EBIN          where call_bench.beam and trivial_nif.beam are
%%   NK_BENCH_N             trivial calls per case (default 100000)
%%   NK_BENCH_IDLE_S        seconds of the idle measurement (default 10)
%%
%% In-process cases run in this VM; wrapped cases run in peer nodes that
%% have the wrapped copies first on their code path (jiffy's and
%% trivial_nif's module names are fixed, so two copies cannot share a VM).
%% Each latency sample is one call, timed with erlang:monotonic_time/1
%% around it; each case is warmed first. Throughputs are calls over the
%% wall time of a batch.
-module(call_bench).
-export([main/0, wrapped_cases/2, add/2]).

-define(ECHO_BYTES, (1 bsl 20)).
-define(CALLERS, 16).

add(A, B) -> A + B.

main() ->
    N = list_to_integer(os:getenv("NK_BENCH_N", "100000")),
    IdleS = list_to_integer(os:getenv("NK_BENCH_IDLE_S", "10")),
    Ebin = os:getenv("NK_BENCH_EBIN"),
    Docs = docs(),
    %% (a) and in-process jiffy, here
    InNif = measure(N, fun() -> trivial_nif:add(1, 2) end),
    InEcho = throughput(echo_calls(N), fun(B) -> B = trivial_nif:echo(B) end),
    InConc = concurrent(N, fun() -> 3 = trivial_nif:add(1, 2) end),
    InJiffy = jiffy_cases(Docs),
    InIdle = idle(IdleS, []),
    %% (c) a port program doing the same addition, and echoing
    Port = open_port({spawn_executable, os:getenv("NK_BENCH_PORT")}, [{packet, 4}, binary]),
    PortStats = measure(N, fun() ->
                                   Port ! {self(), {command, <<1:32, 2:32>>}},
                                   receive {Port, {data, <<3:32>>}} -> ok end
                           end),
    port_close(Port),
    EchoPort = open_port({spawn_executable, os:getenv("NK_BENCH_PORT")}, [{packet, 4}, binary, {args, ["echo"]}]),
    PortEcho = throughput(echo_calls(N), fun(B) ->
                                                 EchoPort ! {self(), {command, B}},
                                                 receive {EchoPort, {data, B}} -> ok end
                                         end),
    port_close(EchoPort),
    %% (d) erpc to a peer node on this machine, the same addition there
    {ok, Peer, PeerNode} = peer:start_link(#{name => peer:random_name(call_bench_erpc),
                                             args => ["-pa", Ebin]}),
    Erpc = measure(N, fun() -> 3 = erpc:call(PeerNode, call_bench, add, [1, 2]) end),
    peer:stop(Peer),
    %% (b) over shared memory, with wrapped jiffy; (b') over the socket
    Shm = in_peer(call_bench_shm, os:getenv("NK_BENCH_WRAPPED_DIR"), Ebin, [N, IdleS]),
    Socket = in_peer(call_bench_socket, os:getenv("NK_BENCH_SOCKET_DIR"), Ebin, [N, 0]),
    report(N, #{nif => InNif, echo => InEcho, conc => InConc, jiffy => InJiffy, idle => InIdle},
           Shm, Socket, PortStats, PortEcho, Erpc),
    halt(0).

in_peer(Name, Dir, Ebin, Args) ->
    {ok, W, WNode} = peer:start_link(#{name => peer:random_name(Name),
                                       args => ["-pa", os:getenv("NK_BENCH_WRAPPED_JIFFY"), "-pa", Ebin],
                                       env => [{"NK_BENCH_TRIVIAL_DIR", Dir}]}),
    R = erpc:call(WNode, ?MODULE, wrapped_cases, Args, infinity),
    peer:stop(W),
    R.

%% Runs in a wrapped peer. IdleS 0: no jiffy and no idle measurement.
wrapped_cases(N, IdleS) ->
    %% The wrapped library must really be the proxy: its host is our child.
    3 = trivial_nif:add(1, 2),
    [_ | _] = hosts(),
    R = #{nif => measure(N, fun() -> trivial_nif:add(1, 2) end),
          echo => throughput(echo_calls(N), fun(B) -> B = trivial_nif:echo(B) end),
          conc => concurrent(N, fun() -> 3 = trivial_nif:add(1, 2) end)},
    case IdleS of
        0 -> R;
        _ -> R#{jiffy => jiffy_cases(docs()), idle => idle(IdleS, hosts())}
    end.

hosts() ->
    [list_to_integer(P) || P <- string:lexemes(os:cmd("pgrep -P " ++ os:getpid() ++ " nifkit-host"), "\n")].

echo_calls(N) -> max(50, N div 200).

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

%% Calls per second of F(Binary) on a 1 MiB binary, in K calls; each
%% result is dropped at once, as a caller would.
throughput(K, F) ->
    B = binary:copy(<<"nifkit">>, ?ECHO_BYTES div 6 + 1),
    repeat(5, F, B),
    T0 = erlang:monotonic_time(nanosecond),
    repeat(K, F, B),
    K * 1.0e9 / (erlang:monotonic_time(nanosecond) - T0).

repeat(0, _, _) -> ok;
repeat(K, F, B) ->
    F(B),
    repeat(K - 1, F, B).

%% Calls per second of ?CALLERS processes calling F at once, N calls in all.
concurrent(N, F) ->
    Each = max(1, N div ?CALLERS),
    Self = self(),
    Run = fun() ->
                  repeat(Each, fun(_) -> F() end, none),
                  Self ! {done, self()}
          end,
    [F() || _ <- lists:seq(1, 100)],
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [spawn_link(Run) || _ <- lists:seq(1, ?CALLERS)],
    [receive {done, P} -> ok end || P <- Pids],
    Each * ?CALLERS * 1.0e9 / (erlang:monotonic_time(nanosecond) - T0).

%% CPU time over S idle seconds, in percent of one core: this VM's, and
%% its hosts' together.
idle(S, Hosts) ->
    Vm = list_to_integer(os:getpid()),
    Before = [cpu_ticks(P) || P <- [Vm | Hosts]],
    timer:sleep(S * 1000),
    After = [cpu_ticks(P) || P <- [Vm | Hosts]],
    Tck = list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))),
    [VmD | HostD] = [A - B || {A, B} <- lists:zip(After, Before)],
    #{vm => 100 * VmD / Tck / S, hosts => 100 * lists:sum(HostD) / Tck / S}.

cpu_ticks(Pid) ->
    {ok, Stat} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/stat"),
    %% The fields after the command name, which may hold spaces.
    [_, Rest] = binary:split(Stat, <<") ">>),
    Fields = binary:split(Rest, <<" ">>, [global]),
    binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)).

report(N, In, Shm, Sock, Port, PortEcho, Erpc) ->
    ok = io:setopts([{encoding, unicode}]),
    #{p50 := Base50, p99 := Base99} = maps:get(nif, In),
    #{p50 := Port50} = Port,
    io:format("| trivial call, `add(1, 2)`, ~b calls each | p50 µs | p99 µs | p50 vs (a) | p99 vs (a) "
              "| p99 / p50 | (c) p50 / this p50 |~n"
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |~n", [N]),
    [io:format("| ~s | ~s | ~s | ~s | ~s | ~s | ~s |~n",
               [Name, num(P50), num(P99), ratio(P50, Base50), ratio(P99, Base99), ratio(P99, P50),
                ratio(Port50, P50)])
     || {Name, #{p50 := P50, p99 := P99}} <-
            [{"(a) NIF in the VM", maps:get(nif, In)},
             {"(b) the same NIF wrapped by nifkit, shared memory", maps:get(nif, Shm)},
             {"(b') the same, `\"transport\": \"socket\"`", maps:get(nif, Sock)},
             {"(c) port program, `{packet, 4}`", Port},
             {"(d) `erpc:call` to a peer node", Erpc}]],
    io:format("~n| throughput | in the VM | wrapped, shm | wrapped, socket | port program "
              "| shm / in the VM | shm / socket | shm / port |~n"
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |~n", []),
    Row = fun(Label, Key, PortV) ->
                  I = maps:get(Key, In), S = maps:get(Key, Shm), K = maps:get(Key, Sock),
                  io:format("| ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s |~n",
                            [Label, rate(I), rate(S), rate(K), rate(PortV), ratio(S, I), ratio(S, K),
                             ratio(S, PortV)])
          end,
    Row(io_lib:format("`echo/1` of a 1 MiB binary, calls/s (~b calls)", [echo_calls(N)]), echo, PortEcho),
    Row(io_lib:format("`add/2` from ~b processes at once, calls/s (~b calls)", [?CALLERS, N]), conc, undefined),
    io:format("~n| jiffy | document | in the VM p50 / p99 µs | wrapped p50 / p99 µs | p50 ratio | p99 ratio |~n"
              "| --- | ---: | ---: | ---: | ---: | ---: |~n", []),
    [begin
         [io:format("| ~s | ~s (~b bytes, ~b calls) | ~s / ~s | ~s / ~s | ~s | ~s |~n",
                    [Op, Label, Bytes, maps:get(n, I), num(maps:get(p50, I)), num(maps:get(p99, I)),
                     num(maps:get(p50, W)), num(maps:get(p99, W)),
                     ratio(maps:get(p50, W), maps:get(p50, I)), ratio(maps:get(p99, W), maps:get(p99, I))])
          || {Op, I, W} <- [{"decode", IDec, WDec}, {"encode", IEnc, WEnc}]]
     end || {{Label, Bytes, IDec, IEnc}, {Label, Bytes, WDec, WEnc}} <- lists:zip(maps:get(jiffy, In),
                                                                                   maps:get(jiffy, Shm))],
    #{vm := InVm} = maps:get(idle, In),
    #{vm := ShmVm, hosts := ShmHosts} = maps:get(idle, Shm),
    io:format("~n| idle, CPU in % of one core | the VM | its hosts |~n| --- | ---: | ---: |~n"
              "| trivial_nif and jiffy in the VM | ~s | - |~n"
              "| trivial_nif and jiffy wrapped (shm), two hosts | ~s | ~s |~n",
              [pct(InVm), pct(ShmVm), pct(ShmHosts)]),
    ok.

num(X) when X >= 100 -> integer_to_list(round(X));
num(X) when X >= 10 -> float_to_list(X, [{decimals, 1}]);
num(X) -> float_to_list(X, [{decimals, 2}]).

rate(undefined) -> "-";
rate(X) -> integer_to_list(round(X)).

pct(X) -> float_to_list(float(X), [{decimals, 2}]).

ratio(undefined, _) -> "-";
ratio(_, undefined) -> "-";
ratio(_, B) when B == 0 -> "-";
ratio(A, B) -> [float_to_list(A / B, [{decimals, 1}]), "×"].
