%% SPDX-License-Identifier: Apache-2.0
%%
%% Compatibility harness: runs a corpus of calls against a NIF library's
%% public Erlang API and compares two runs of it, one with the library loaded
%% normally and one with the library running behind the nifkit proxy.
%%
%%   erl -noshell -pa DIR -run nk_compat run   Corpus Out
%%   erl -noshell -pa DIR -run nk_compat check Corpus Expected Actual
%%
%% A corpus is a file of Erlang terms: `{Module, Function, Args}.` per call,
%% plus optional `{setup, [{M, F, A}, ...]}.` run once before the calls (a
%% library whose NIF is loaded by its application rather than by on_load).
%% Each call runs in its own process, so a call that hangs or crashes costs
%% one result, and the messages it receives are its own. A result is
%% {ok, Value} or {Class, Reason}, and becomes {Result, {messages, Ms}} when
%% messages arrived during the call, {Result, {late_messages, Ms}} when they
%% arrived only after it returned (BEAM delivers a NIF's enif_send to self
%% before the NIF returns; a late message is a difference worth seeing).
%%
%% The helpers stream/3 and hash_stream/2 are corpus entries too: they chain
%% calls whose state (a resource) cannot be written literally in a corpus.
-module(nk_compat).

-export([run/1, check/1, crash/0, lifecycle/0, stream/3, hash_stream/2, jiffy_roundtrip/2, expand_call/3]).

-define(CALL_TIMEOUT, 30000).
-define(LATE_WAIT, 5).

%% --- running a corpus ------------------------------------------------------

run([CorpusFile, OutFile]) ->
    Status = try
                 {Setup, Calls} = read_corpus(CorpusFile),
                 [setup_call(S) || S <- Setup],
                 Results = run_calls(Calls, parallelism()),
                 ok = check_overlay(Calls),
                 ok = file:write_file(OutFile, term_to_binary(Results)),
                 io:format("~s: ~b calls~n", [CorpusFile, length(Results)]),
                 0
             catch
                 C:R:St ->
                     io:format(standard_error, "nk_compat run failed: ~p:~p~n~p~n",
                               [C, R, St]),
                     1
             end,
    erlang:halt(Status).

read_corpus(File) ->
    case file:consult(File) of
        {ok, Terms} ->
            Setup = lists:append([L || {setup, L} <- Terms]),
            Calls = [C || C = {M, F, A} <- Terms, is_atom(M), is_atom(F), is_list(A)],
            Bad = [T || T <- Terms, not is_entry(T)],
            Bad =:= [] orelse error({bad_corpus_entries, File, Bad}),
            {Setup, Calls};
        {error, E} ->
            error({corpus, File, file:format_error(E)})
    end.

is_entry({setup, L}) when is_list(L) -> true;
is_entry({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso is_list(A);
is_entry(_) -> false.

setup_call({M, F, A}) ->
    case apply(M, F, A) of
        ok -> ok;
        {ok, _} -> ok;
        Other -> error({setup_failed, {M, F, A}, Other})
    end.

%% NK_COMPAT_PARALLEL=K runs the corpus K times at once, from K processes,
%% so that calls reach the library from many schedulers concurrently (the
%% host serves them with several workers). All K runs must agree; the
%% result is one of them.
parallelism() ->
    case os:getenv("NK_COMPAT_PARALLEL") of
        false -> 1;
        S -> max(1, list_to_integer(S))
    end.

run_calls(Calls, 1) ->
    [one_call(C) || C <- Calls];
run_calls(Calls, K) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), [one_call(C) || C <- Calls]} end)
            || _ <- lists:seq(1, K)],
    [First | Rest] = [receive {P, R} -> R end || P <- Pids],
    [begin
         Bad = [{N, C, mask(A), mask(B)}
                || {N, {C, A, B}} <- lists:enumerate(lists:zip3(Calls, First, R)),
                   mask(A) =/= mask(B)],
         Bad =:= [] orelse error({parallel_runs_disagree, Bad})
     end || R <- Rest],
    io:format("~b concurrent runs agree~n", [K]),
    First.

one_call({M, F, A}) ->
    Parent = self(),
    {Pid, Mon} = spawn_monitor(fun() -> Parent ! {self(), call_in_child(M, F, A)} end),
    receive
        {Pid, Result} ->
            erlang:demonitor(Mon, [flush]),
            Result;
        {'DOWN', Mon, process, Pid, Why} ->
            {died, Why}
    after ?CALL_TIMEOUT ->
            exit(Pid, kill),
            {timeout, ?CALL_TIMEOUT}
    end.

call_in_child(M, F, A) ->
    R = try
            {ok, apply(M, F, A)}
        catch
            Class:Reason -> {Class, Reason}
        end,
    case flush(0) of
        [] ->
            case flush(?LATE_WAIT) of
                [] -> R;
                Late -> {R, {late_messages, Late}}
            end;
        Ms ->
            {R, {messages, Ms ++ flush(?LATE_WAIT)}}
    end.

flush(Wait) ->
    receive
        M -> [M | flush(0)]
    after Wait -> []
    end.

%% In the run behind the proxy, NK_COMPAT_OVERLAY names the directory that
%% holds the wrapped library: every module the corpus calls that comes from a
%% library must be loaded from there, and no real library may be mapped into
%% this VM (it must run in the host only).
check_overlay(Calls) ->
    case os:getenv("NK_COMPAT_OVERLAY") of
        false -> ok;
        "" -> ok;
        Overlay ->
            Abs = filename:absname(Overlay),
            Mods = lists:usort([M || {M, _, _} <- Calls, M =/= ?MODULE]),
            Wrong = [{M, W} || M <- Mods,
                               W <- [code:which(M)],
                               is_list(W),
                               not lists:prefix(Abs, W),
                               lists:member(M, wrapped_modules())],
            Wrong =:= [] orelse error({not_from_overlay, Wrong}),
            Maps = mapped_files(),
            Proxies = [F || F <- Maps, lists:prefix(Abs, F)],
            Proxies =/= [] orelse error({proxy_not_mapped, Abs}),
            Real = [F || F <- Maps, lists:suffix(".real.so", F)],
            Real =:= [] orelse error({real_library_mapped_in_vm, Real}),
            io:format("proxies mapped: ~p~n", [Proxies]),
            ok
    end.

wrapped_modules() ->
    case os:getenv("NK_COMPAT_MODULES") of
        false -> [];
        S -> [list_to_atom(T) || T <- string:lexemes(S, " ,")]
    end.

mapped_files() ->
    {ok, Bin} = file:read_file("/proc/self/maps"),
    Lines = binary:split(Bin, <<"\n">>, [global, trim]),
    lists:usort([binary_to_list(P) || L <- Lines,
                                      [_, _, _, _, _, P | _] <- [string:lexemes(L, " ")],
                                      binary:first(P) =:= $/]).

%% --- crash containment ----------------------------------------------------

%% jiffy 1.1.1 divides by zero when {bytes_per_red, 0} is given: loaded
%% normally, the VM dies of SIGFPE. Behind the proxy the host dies instead:
%% the caller gets error:{nifkit, Reason, Details} (crashed, or exited when
%% the host, as its pid namespace's init, reports the signal as status
%% 128 + 8), the VM lives on, the proxy starts a new host and the next call
%% works.
crash() ->
    Status = try
                 {ok, [1]} = {ok, jiffy:decode(<<"[1]">>)},
                 [H1] = hosts(),
                 First = catch_step(fun() -> jiffy:decode(<<"[1]">>, [{bytes_per_red, 0}]) end),
                 io:format("the crashing call gave ~p~n", [First]),
                 {error, {nifkit, Reason, #{library := Lib, message := Msg, signal := Sig,
                                             syscall := undefined}}} = First,
                 true = lists:member(Reason, [crashed, exited]),
                 true = is_binary(Lib) andalso is_binary(Msg),
                 true = Sig =:= 8 orelse Sig =:= undefined,
                 Next = catch_step(fun() -> jiffy:decode(<<"[2]">>) end),
                 io:format("the next call gave ~p~n", [Next]),
                 {ok, [2]} = Next,
                 [H2] = hosts(),
                 H2 =/= H1 orelse error({same_host, H1}),
                 ok = check_overlay([{jiffy, decode, []}]),
                 io:format("the VM survived a NIF crash, and host ~s replaced host ~s~n", [H2, H1]),
                 0
             catch
                 C:R:St ->
                     io:format(standard_error, "nk_compat crash failed: ~p:~p~n~p~n", [C, R, St]),
                     1
             end,
    erlang:halt(Status).

%% The proxy's load, upgrade and unload, with jiffy: reloading the module
%% while its old code holds the library runs jiffy's upgrade() in the same
%% host, and purging the old code keeps it; deleting and purging the module
%% stops the host; loading it again starts a new one.
lifecycle() ->
    Status = try
                 [1] = jiffy:decode(<<"[1]">>),
                 [H1] = hosts(),
                 {module, jiffy} = code:load_file(jiffy),
                 [2] = jiffy:decode(<<"[2]">>),
                 [H1] = hosts(),
                 code:purge(jiffy),
                 [4] = jiffy:decode(<<"[4]">>),
                 [H1] = hosts(),
                 io:format("reloaded (upgrade) and the old code purged, still served by host ~s~n", [H1]),
                 true = code:delete(jiffy),
                 code:purge(jiffy),
                 ok = wait_until(fun() -> hosts() =:= [] end, 5000),
                 io:format("delete and purge stopped the host~n"),
                 {module, jiffy} = code:load_file(jiffy),
                 [3] = jiffy:decode(<<"[3]">>),
                 [H2] = hosts(),
                 H2 =/= H1 orelse error({same_host, H1}),
                 ok = check_overlay([{jiffy, decode, []}]),
                 io:format("loaded again with a new host ~s~n", [H2]),
                 0
             catch
                 C:R:St ->
                     io:format(standard_error, "nk_compat lifecycle failed: ~p:~p~n~p~n", [C, R, St]),
                     1
             end,
    erlang:halt(Status).

%% Process ids of this VM's hosts.
hosts() -> nk_test_hosts:hosts().

wait_until(F, T) when T =< 0 -> {timeout, F()};
wait_until(F, T) ->
    case F() of
        true -> ok;
        false -> timer:sleep(20), wait_until(F, T - 20)
    end.

%% --- helpers callable from a corpus ----------------------------------------

%% fxml_stream: a parser fed Chunks, then closed; the result is what each
%% step returned (states masked as 'state', since they are resources) and
%% the messages it sent are collected by call_in_child.
stream(MaxSize, Options, Chunks) ->
    S0 = case Options of
             none -> fxml_stream:new(self(), MaxSize);
             _ -> fxml_stream:new(self(), MaxSize, Options)
         end,
    {SN, Steps} = lists:foldl(
                    fun(Chunk, {S, Acc}) ->
                            case catch_step(fun() -> fxml_stream:parse(S, Chunk) end) of
                                {ok, S1} -> {S1, [mask_state(S1) | Acc]};
                                Err -> {S, [Err | Acc]}
                            end
                    end, {S0, []}, Chunks),
    Closed = catch_step(fun() -> fxml_stream:close(SN) end),
    {lists:reverse(Steps), Closed}.

catch_step(F) ->
    try {ok, F()} catch C:R -> {C, R} end.

mask_state(S) when is_reference(S) -> state;
mask_state(Other) -> {not_a_state, Other}.

%% crypto: hash_init/update/final over Chunks, the state crossing as a
%% resource between calls.
hash_stream(Type, Chunks) ->
    S0 = crypto:hash_init(Type),
    SN = lists:foldl(fun(C, S) -> crypto:hash_update(S, C) end, S0, Chunks),
    crypto:hash_final(SN).

%% apply(M, F, Args) where each {'$bytes', Len, Seed} in Args is replaced by
%% Len pseudo-random bytes made from Seed (a linear congruential generator,
%% so both VMs make the same bytes): large inputs without a large corpus.
expand_call(M, F, Args) ->
    apply(M, F, [expand(A) || A <- Args]).

expand({'$bytes', Len, Seed}) -> lcg_bytes(Len, Seed, []);
expand(L) when is_list(L) -> [expand(E) || E <- L];
expand(T) -> T.

lcg_bytes(0, _, Acc) -> list_to_binary(Acc);
lcg_bytes(N, S, Acc) ->
    S1 = (S * 1103515245 + 12345) band 16#7fffffff,
    lcg_bytes(N - 1, S1, [(S1 bsr 16) band 255 | Acc]).

%% jiffy: encode with EncOpts, then decode the result with DecOpts.
jiffy_roundtrip(Term, {EncOpts, DecOpts}) ->
    Json = iolist_to_binary(jiffy:encode(Term, EncOpts)),
    {Json, jiffy:decode(Json, DecOpts)}.

%% --- comparing two runs ----------------------------------------------------

check([CorpusFile, ExpectedFile, ActualFile]) ->
    Status = try
                 {_, Calls} = read_corpus(CorpusFile),
                 Exp = read_results(ExpectedFile),
                 Act = read_results(ActualFile),
                 length(Exp) =:= length(Calls) orelse
                     error({length_mismatch, expected, length(Exp), length(Calls)}),
                 length(Act) =:= length(Calls) orelse
                     error({length_mismatch, actual, length(Act), length(Calls)}),
                 Diffs = [{N, C, E, A}
                          || {N, {C, E, A}} <- lists:enumerate(lists:zip3(Calls, Exp, Act)),
                             mask(E) =/= mask(A)],
                 [io:format("DIFFERENCE in call ~b: ~P~n  expected: ~P~n  actual:   ~P~n",
                            [N, C, 60, E, 60, A, 60]) || {N, C, E, A} <- Diffs],
                 %% A helper of nk_compat_apps asserts as it goes: one that
                 %% fails in the real BEAM tests nothing, even if the two
                 %% runs agree.
                 Broken = [{N, C, E} || {N, {C = {nk_compat_apps, _, _}, E}} <- lists:enumerate(lists:zip(Calls, Exp)),
                                        element(1, E) =/= ok],
                 [io:format("HELPER FAILED in the real BEAM, call ~b: ~P~n  result: ~P~n", [N, C, 60, E, 60])
                  || {N, C, E} <- Broken],
                 io:format("~s: ~b calls, ~b differences~n",
                           [CorpusFile, length(Calls), length(Diffs)]),
                 case {Diffs, Broken} of {[], []} -> 0; _ -> 1 end
             catch
                 Cl:R:St ->
                     io:format(standard_error, "nk_compat check failed: ~p:~p~n~p~n",
                               [Cl, R, St]),
                     1
             end,
    erlang:halt(Status).

read_results(File) ->
    {ok, Bin} = file:read_file(File),
    binary_to_term(Bin).

%% References differ between two VMs by nature, and a resource is a
%% reference in the real VM and an external reference behind the proxy:
%% both become one placeholder. Everything else must be =:=.
mask(T) when is_reference(T) -> '$ref';
mask(T) when is_list(T) -> mask_list(T);
mask(T) when is_tuple(T) -> list_to_tuple([mask(E) || E <- tuple_to_list(T)]);
mask(T) when is_map(T) -> maps:from_list([{mask(K), mask(V)} || {K, V} <- maps:to_list(T)]);
mask(T) -> T.

%% Improper lists keep their tail.
mask_list([H | T]) -> [mask(H) | mask_list(T)];
mask_list([]) -> [];
mask_list(Tail) -> mask(Tail).
