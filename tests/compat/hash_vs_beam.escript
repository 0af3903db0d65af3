#!/usr/bin/env escript
%% SPDX-License-Identifier: Apache-2.0
%%
%% hash_vs_beam.escript PROGRAM [SEED]
%%
%% BEAM makes about 2,000 terms (edge cases, numbers around every precision
%% boundary, random nests of every type, and slightly changed copies of
%% them), and writes for each term_to_binary(T) and erlang:phash2(T, 1 bsl 32).
%% For pairs of them (all pairs of edge cases and numbers, random pairs, each
%% term against its changed copy) it writes the sign of the comparison, whether
%% they are =:=, and the order maps:keys/1 puts them in. PROGRAM
%% (hash_vs_beam.c) decodes the terms with the host's codec and checks
%% nk_phash2, nk_compare, nk_identical and nk_map_key_cmp against all of it.
%% The test fails on any difference and prints the terms involved.
-mode(compile).

main([Prog]) ->
    main([Prog, integer_to_list(erlang:unique_integer([positive]) rem 100000)]);
main([Prog, SeedStr]) ->
    Seed = list_to_integer(SeedStr),
    io:format("seed ~p (rerun: hash_vs_beam.escript PROGRAM ~p)~n", [Seed, Seed]),
    rand:seed(exsss, {Seed, Seed * 7 + 1, Seed * 13 + 2}),
    Edge = edge_cases(),
    Nums = numbers(),
    Random = [gen(4) || _ <- lists:seq(1, 900)],
    Mutated = [mutate(T) || T <- Random],
    Terms = list_to_tuple(Edge ++ Nums ++ Random ++ Mutated),
    NE = length(Edge), NN = length(Nums), NR = length(Random),
    N = tuple_size(Terms),
    EdgeIdx = lists:seq(0, NE + NN - 1),
    Pairs = [{I, J} || I <- EdgeIdx, J <- EdgeIdx]
        ++ [{rand:uniform(N) - 1, rand:uniform(N) - 1} || _ <- lists:seq(1, 5000)]
        ++ [{NE + NN + K, NE + NN + NR + K} || K <- lists:seq(0, NR - 1)],
    Dir = make_tmpdir(),
    TermsFile = filename:join(Dir, "terms"),
    PairsFile = filename:join(Dir, "pairs"),
    ok = file:write_file(TermsFile,
                         [begin
                              B = term_to_binary(T),
                              [<<(byte_size(B)):32>>, B, <<(erlang:phash2(T, 1 bsl 32)):32>>]
                          end || T <- tuple_to_list(Terms)]),
    ok = file:write_file(PairsFile,
                         [pair_record(I, J, element(I + 1, Terms), element(J + 1, Terms))
                          || {I, J} <- Pairs]),
    {Status, Output} = run(Prog, [TermsFile, PairsFile]),
    _ = file:del_dir_r(Dir),
    Lines = string:split(unicode:characters_to_list(iolist_to_binary(Output)), "\n", all),
    lists:foreach(fun(L) -> report(L, Terms) end, Lines),
    case Status of
        0 -> halt(0);
        _ -> io:format("FAILED (exit status ~p)~n", [Status]), halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: hash_vs_beam.escript PROGRAM [SEED]~n", []),
    halt(2).

pair_record(I, J, A, B) ->
    Order = if A < B -> -1; A == B -> 0; true -> 1 end,
    Ident = case A =:= B of true -> 1; false -> 0 end,
    KeyOrder = case maps:keys(#{A => 0, B => 0}) of
                   [_] -> 0;
                   [First, _] when First =:= A -> -1;
                   _ -> 1
               end,
    <<I:32, J:32, Order:8/signed, Ident:8, KeyOrder:8/signed>>.

%% Prints a line of the program's output, and for a difference the terms.
report("", _) -> ok;
report(Line, Terms) ->
    io:format("~s~n", [Line]),
    case Line of
        "BAD " ++ Rest ->
            [_Kind, Idx | _] = string:split(Rest, " ", all) ++ [""],
            Ids = [list_to_integer(S) || S <- string:tokens(Idx ++ " " ++ second(Rest), " :"),
                                         S =/= "", lists:all(fun(C) -> C >= $0 andalso C =< $9 end, S)],
            [io:format("  term ~p: ~P~n", [I, element(I + 1, Terms), 30])
             || I <- lists:usort(Ids), I < tuple_size(Terms)],
            ok;
        _ -> ok
    end.

second(Rest) ->
    case string:split(Rest, " ", all) of
        [_, _, J | _] -> J;
        _ -> ""
    end.

run(Prog, Args) ->
    Port = open_port({spawn_executable, Prog},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [Acc, D]);
        {Port, {exit_status, S}} -> {S, Acc}
    after 240000 -> {timeout, Acc}
    end.

make_tmpdir() ->
    Base = case os:getenv("TMPDIR") of false -> "/tmp"; T -> T end,
    Dir = filename:join(Base, "hash_vs_beam." ++ os:getpid()),
    ok = filelib:ensure_path(Dir),
    Dir.

%% --- terms ---------------------------------------------------------------

edge_cases() ->
    Bin = list_to_binary(lists:seq(0, 255)),
    <<_:3, Odd:60/bitstring, _/bitstring>> = Bin,
    Self = self(),
    Other = spawn(fun() -> ok end),
    X = rand:uniform(1000),
    [0, 1, -1, 0.0, -0.0, 1.0, -1.0, 255, 256, 134217727, 134217728, -134217728, -134217729,
     a, b, ab, '', 'Ärger', 'ärger', 'ünïcødé', '日本', 'z', true, nonode@nohost,
     make_ref(), make_ref(), ext_ref('a@b', 1, [1, 2, 3]), ext_ref('a@b', 2, [1, 2, 3]),
     ext_ref('a@b', 1, [1, 2, 3, 0, 0]), ext_ref('a@b', 1, [1, 2, 3, 4, 5]), ext_ref('z@b', 1, [0]),
     ext_ref('a@b', 1, [7]),
     fun() -> ok end, fun() -> X end, fun() -> {X, Self} end, fun lists:map/2, fun lists:seq/3,
     fun erlang:phash2/1,
     hd(erlang:ports()), ext_port('a@b', 5, 1), ext_port('a@b', 1 bsl 40, 1), ext_port('b@b', 1, 1),
     ext_port('a@b', 5, 2),
     Self, Other, ext_pid('a@b', 5, 0, 1), ext_pid('a@b', 5, 1, 1), ext_pid('a@b', 6, 0, 1),
     ext_pid('z@b', 4, 0, 1), ext_pid('a@b', 5, 0, 2), ext_pid('a@b', 1 bsl 31, 0, 1),
     {}, {a}, {a, b}, {b, a}, {1, 2.0}, {1.0, 2}, {{}}, {[]},
     #{}, #{a => 1}, #{a => 1.0}, #{1 => a}, #{1.0 => a}, #{a => 1, b => 2}, #{b => 1},
     #{a => 2}, #{[] => {}}, maps:from_list([{I, I} || I <- lists:seq(1, 40)]),
     maps:from_list([{I, I} || I <- lists:seq(2, 41)]),
     maps:from_list([{I, -I} || I <- lists:seq(1, 40)]),
     maps:from_list([{float(I), I} || I <- lists:seq(1, 40)]),
     [], [1], [1, 2], [2], [1 | 2], [1 | 2.0], [a | b], "hello", "hellp", "hello world",
     [255, 256], [1, 2, 3, 4, 5, 6, 7, 8, 9], [[]], [[1]], lists:seq(1, 300),
     <<>>, <<0>>, <<1>>, <<1, 2>>, <<1:1>>, <<0:1>>, <<5:3>>, <<255, 7:3>>, <<"abcdefghijkl">>,
     <<"abcdefghijklm">>, Bin, binary:part(Bin, 3, 20), Odd].

ext_pid(Node, Id, Serial, Creation) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, Id:32, Serial:32, Creation:32>>).

ext_port(Node, Id, Creation) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 120, 119, (byte_size(N)), N/binary, Id:64, Creation:32>>).

ext_ref(Node, Creation, Ids) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 90, (length(Ids)):16, 119, (byte_size(N)), N/binary, Creation:32,
                     << <<I:32>> || I <- Ids >>/binary>>).

%% Integers and floats at and around every boundary the host must get right:
%% the 28-bit hash path, 2^53 (doubles stop being exact), BEAM's and the
%% host's small integer limits (2^59, 2^60), 64-bit words, the double range.
numbers() ->
    Ks = [27, 31, 32, 52, 53, 54, 59, 60, 61, 63, 64, 65, 100, 1023],
    Ints = lists:append([[S * ((1 bsl K) + D) || D <- [-1, 0, 1], S <- [1, -1]] || K <- Ks]),
    Floats = lists:append([[S * float(1 bsl K), S * (float(1 bsl K) + 0.5 * (1 bsl max(0, K - 52)))]
                           || K <- Ks, S <- [1, -1]]),
    Ints ++ Floats ++ [1 bsl 1024, -(1 bsl 1024), 1.7976931348623157e308, -1.7976931348623157e308,
                       0.5, -0.5, 2.9999999999999996, 3, 5.0e-324, 1.0e-300].

%% --- random terms --------------------------------------------------------

pick(L) -> lists:nth(rand:uniform(length(L)), L).

rint() ->
    case rand:uniform(4) of
        1 -> rand:uniform(2001) - 1001;
        2 -> (rand:uniform(2) * 2 - 3) * rand:uniform(1 bsl 62);
        3 -> (rand:uniform(2) * 2 - 3) * rand:uniform(1 bsl (rand:uniform(300)));
        4 -> (rand:uniform(2) * 2 - 3) * ((1 bsl pick([27, 28, 59, 60, 64])) + rand:uniform(3) - 2)
    end.

rfloat() ->
    case rand:uniform(4) of
        1 -> float(rint() rem (1 bsl 1000));
        2 -> rand:normal() * math:pow(10, rand:uniform(40) - 20);
        3 -> pick([0.0, -0.0, 1.0, 0.1, -2.5, 1.0e300, -1.0e-300]);
        4 -> (rand:uniform(2) * 2 - 3) * math:pow(2, rand:uniform(1000) - 1)
    end.

rbin() ->
    B = rand:bytes(rand:uniform(30) - 1),
    case rand:uniform(3) of
        1 -> <<B/binary, (rand:uniform(128) - 1):(rand:uniform(7))>>;
        _ -> B
    end.

leaf() ->
    case rand:uniform(12) of
        1 -> rint();
        2 -> rint();
        3 -> rfloat();
        4 -> pick([a, b, ok, error, '', 'Ärger', 'ünïcødé', '日本', 'hello world', true]);
        5 -> rbin();
        6 -> pick([self(), ext_pid(pick(['a@b', 'c@d']), rand:uniform(1 bsl 20), rand:uniform(4) - 1,
                                       rand:uniform(3))]);
        7 -> pick([hd(erlang:ports()), ext_port('a@b', rand:uniform(1 bsl 40), rand:uniform(3))]);
        8 -> pick([make_ref(), ext_ref(pick(['a@b', 'c@d']), rand:uniform(3),
                                       [rand:uniform(1 bsl 18) | [rand:uniform(1 bsl 32) - 1 || _ <- lists:seq(1, rand:uniform(4))]])]);
        9 -> Y = rint(), pick([fun() -> Y end, fun lists:map/2, fun(Z) -> {Z, Y} end, fun() -> ok end]);
        10 -> pick([[], {}, #{}, <<>>]);
        11 -> rand:uniform(256) - 1;
        12 -> float(rand:uniform(100))
    end.

gen(0) -> leaf();
gen(D) ->
    case rand:uniform(10) of
        N when N =< 3 -> leaf();
        4 -> list_to_tuple([gen(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        5 -> [gen(D - 1) || _ <- lists:seq(1, rand:uniform(6) - 1)];
        6 -> [gen(D - 1) || _ <- lists:seq(1, rand:uniform(4))] ++ leaf();
        7 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(12))] ++ pick([[], [gen(D - 1)]]);
        8 -> maps:from_list([{gen(D - 1), gen(D - 1)} || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        9 -> maps:from_list([{rint(), gen(0)} || _ <- lists:seq(1, 30 + rand:uniform(10))]);
        10 -> {gen(D - 1), gen(D - 1)}
    end.

%% A copy of T with one leaf changed, often to something equal but not
%% identical (1 -> 1.0) or adjacent in order.
mutate(T) when is_tuple(T), tuple_size(T) > 0 ->
    I = rand:uniform(tuple_size(T)),
    setelement(I, T, mutate(element(I, T)));
mutate([H | Tl]) ->
    case rand:uniform(3) of
        1 -> [mutate(H) | Tl];
        2 -> [H | mutate(Tl)];
        3 -> [H, 0 | Tl]
    end;
mutate(M) when is_map(M), map_size(M) > 0 ->
    K = pick(maps:keys(M)),
    case rand:uniform(2) of
        1 -> M#{K := mutate(maps:get(K, M))};
        2 -> maps:put(mutate(K), maps:get(K, M), maps:remove(K, M))
    end;
mutate(N) when is_integer(N) ->
    case rand:uniform(3) of
        1 -> try float(N) catch _:_ -> N + 1 end;
        2 -> N + 1;
        3 -> N - 1
    end;
mutate(F) when is_float(F) ->
    case rand:uniform(2) of
        1 -> try round(F) catch _:_ -> -F end;
        2 -> -F
    end;
mutate(B) when is_bitstring(B), bit_size(B) > 0 ->
    case rand:uniform(2) of
        1 -> <<B/bitstring, 0:1>>;
        2 -> S = bit_size(B) - 1, <<P:S/bitstring, _:1>> = B, P
    end;
mutate(_) -> leaf().
