#!/usr/bin/env escript
%% SPDX-License-Identifier: Apache-2.0
%%
%% The nifkit tool's term printer and literal reader against the real BEAM.
%%
%% 1. About a thousand edge-case and random terms: erl writes each one's
%%    term_to_binary and the text io_lib:print(T, 1, 1000000, -1) gives;
%%    the printer must give the same bytes for every one.
%% 2. About three hundred terms without pids, references, ports or funs
%%    (they have no literal): erl writes each as ~w or ~p text, the literal
%%    reader turns it into ETF, and binary_to_term of that must be =:= the
%%    term.
%%
%% Usage: cli_compat.escript PATH-TO-cli_compat [SEED]
-mode(compile).

main([Driver]) ->
    main([Driver, "1"]);
main([Driver, Seed]) ->
    _ = rand:seed(exsss, {list_to_integer(Seed), 17, 29}),
    Dir = make_tmp(),
    try
        R1 = print_check(Driver, Dir),
        R2 = literal_check(Driver, Dir),
        case R1 andalso R2 of
            true -> halt(0);
            false -> halt(1)
        end
    after
        os:cmd("rm -rf " ++ Dir)
    end;
main(_) ->
    io:format(standard_error, "usage: cli_compat.escript DRIVER [SEED]~n", []),
    halt(64).

make_tmp() ->
    Dir = string:trim(os:cmd("mktemp -d")),
    true = filelib:is_dir(Dir),
    Dir.

record(Bin) -> [<<(byte_size(Bin)):32>>, Bin].

text(T) -> unicode:characters_to_binary(io_lib:print(T, 1, 1000000, -1)).

run(Driver, Args) ->
    Port = open_port({spawn_executable, Driver},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [Acc, D]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(Acc)}
    end.

print_check(Driver, Dir) ->
    Terms = edge_terms() ++ [random_term(4) || _ <- lists:seq(1, 900)],
    File = filename:join(Dir, "print.bin"),
    ok = file:write_file(File, [[record(term_to_binary(T)), record(text(T))] || T <- Terms]),
    {Status, Out} = run(Driver, ["print", File]),
    io:format("printer: ~s", [Out]),
    Status =:= 0.

literal_check(Driver, Dir) ->
    Terms = [T || T <- edge_terms() ++ [random_term(4) || _ <- lists:seq(1, 400)],
                  literal(T)],
    Picked = lists:sublist(Terms, 320),
    %% ~w, ~p on one line, and ~p as erl wraps it at 80 columns (strings
    %% and binaries split into adjacent "..." "..." parts, newlines).
    Texts = [case I rem 3 of
                 0 -> unicode:characters_to_binary(io_lib:format("~w", [T]));
                 1 -> text(T);
                 2 -> unicode:characters_to_binary(io_lib:format("~p", [T]))
             end || {I, T} <- lists:zip(lists:seq(1, length(Picked)), Picked)],
    In = filename:join(Dir, "literals.bin"),
    Out = filename:join(Dir, "etf.bin"),
    ok = file:write_file(In, [record(X) || X <- Texts]),
    {Status, Msg} = run(Driver, ["parse", In, Out]),
    io:format("reader: ~s", [Msg]),
    {ok, Etfs} = file:read_file(Out),
    Bad = compare(Picked, Texts, Etfs, 1, []),
    [io:format("literal ~b: ~ts~n  ~s~n", [I, Text, Why])
     || {I, Text, Why} <- lists:sublist(lists:reverse(Bad), 10)],
    io:format("reader: ~b literals, ~b wrong~n", [length(Picked), length(Bad)]),
    Status =:= 0 andalso Bad =:= [] andalso length(Picked) >= 300.

compare([], [], <<>>, _, Bad) -> Bad;
compare([T | Ts], [X | Xs], <<16#ffffffff:32, N:32, Msg:N/binary, Rest/binary>>, I, Bad) ->
    compare(Ts, Xs, Rest, I + 1, [{I, X, ["refused: ", Msg, " (term ", io_lib:format("~w", [T]), ")"]} | Bad]);
compare([T | Ts], [X | Xs], <<N:32, Etf:N/binary, Rest/binary>>, I, Bad) ->
    Got = try binary_to_term(Etf) catch _:_ -> {'$bad_etf', Etf} end,
    case Got =:= T of
        true -> compare(Ts, Xs, Rest, I + 1, Bad);
        false -> compare(Ts, Xs, Rest, I + 1,
                         [{I, X, io_lib:format("gave ~w, want ~w", [Got, T])} | Bad])
    end;
compare(Ts, _, Rest, I, Bad) ->
    [{I, <<>>, io_lib:format("output ends early: ~b terms left, ~b bytes", [length(Ts), byte_size(Rest)])} | Bad].

%% Terms with a literal syntax: no pids, references, ports or funs.
literal(T) when is_pid(T); is_reference(T); is_port(T); is_function(T) -> false;
literal(T) when is_list(T) -> literal_list(T);
literal(T) when is_tuple(T) -> lists:all(fun literal/1, tuple_to_list(T));
literal(T) when is_map(T) -> lists:all(fun({K, V}) -> literal(K) andalso literal(V) end, maps:to_list(T));
literal(_) -> true.

literal_list([H | T]) -> literal(H) andalso literal_list(T);
literal_list([]) -> true;
literal_list(T) -> literal(T).

edge_terms() ->
    Ints = [0, 1, -1, 255, 256, -256, 134217727, -134217728, 2147483647, -2147483648,
            2147483648, 4294967295, 4294967296, 9223372036854775807, -9223372036854775808,
            9223372036854775808, 18446744073709551615, 18446744073709551616,
            -18446744073709551616, 1 bsl 100, -(1 bsl 100), 1 bsl 2040, (1 bsl 2048) - 1,
            -(1 bsl 4000) + 12345],
    Floats = [0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1/3, 2/3, 100.0, 1000.0, 1.0e10, 1.5e10,
              1.0e-5, 1.0e-4, 0.001, 0.0015, 1.25e-4, 123456.0, 1234567.0, 1.0e15, 1.0e16,
              9007199254740991.0, 9007199254740992.0, 9007199254740993.0e3,
              1.2345678901234568e17, 5.0e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, -1.7976931348623157e308, 3.141592653589793,
              2.718281828459045, 1.0e22, 1.0e23, 1.0e21, 123.456, -0.5, 0.5, 1.0e-10,
              4.9406564584124654e-324, 8.98846567431158e307, 299792458.0, 6.02214076e23],
    Atoms = [a, 'A', 'a b', '[]', '{}', '', 'end', 'and', 'maybe', 'else', 'cond', 'true',
             'ok@node', 'hello_World9', '9a', '_', '_x', 'ß', 'é', 'aÀ', 'a×', 'ÿ', '÷',
             'αβ', '日本', 'a\nb', 'tab\tx', 'q\'uote', 'back\\slash', 'a"b', '\x{7f}',
             '\x{80}', '\x{9f}', '\x{a0}', '\e', '+', '-', 'a.b', 'a-b',
             list_to_atom(lists:duplicate(255, $z))],
    Strings = ["", "abc", "a\nb\tc", "\e\v\b\f\r", "quote\"s", "back\\slash", [127],
               [160, 200, 255], [256], [8364], "émoji", [31], [0], [$a, 128], "'", "[]",
               lists:seq(32, 126), lists:seq(160, 255), [$a | b], [1, 2 | 3], [[]], ["ab", "cd"],
               [a, [b, [c]]], lists:duplicate(300, $x)],
    Bins = [<<>>, <<"abc">>, <<1, 2, 3>>, <<"a\nb">>, <<"quote\"">>, <<"\\">>, <<127>>,
            <<128>>, <<160>>, <<255>>, <<"é"/utf8>>, <<0>>, <<1:1>>, <<1:3>>, <<255:7>>,
            <<"ab", 1:3>>, <<0:5>>, <<"\e\v">>, list_to_binary(lists:seq(0, 255)),
            binary:copy(<<"xy">>, 200)],
    Compound = [{}, {a}, {1, 2.0, "x", <<"y">>}, #{}, #{a => 1}, #{b => 1, a => 2},
                #{1 => a, 1.0 => b, -1 => c, 0.5 => d}, #{"s" => 1, [] => 2, {} => 3, #{} => 4,
                <<>> => 5, a => 6, 7 => 7}, #{#{a => 1} => x, #{b => 1} => y, #{a => 2} => z},
                #{{1.0} => a, {2} => b}, #{[1.0] => a, [2] => b},
                #{<<0:1>> => c, <<1>> => b, <<1:3>> => a}, maps:from_list([{I, I} || I <- lists:seq(1, 32)]),
                [#{}], {#{}}, #{a => #{b => #{c => []}}}],
    Opaque = [self(), list_to_pid("<0.1.2>"), list_to_pid("<0.200.0>"), make_ref(),
              erlang:list_to_ref("#Ref<0.1.2.3>"), hd(erlang:ports()), fun lists:map/2,
              fun erlang:'+'/2, fun 'A':b/0, fun() -> ok end, fun(X) -> {X, Atoms} end,
              {self(), make_ref()},
              #{self() => 1, make_ref() => 2, hd(erlang:ports()) => 3, fun lists:map/2 => 4},
              #{list_to_pid("<0.1.2>") => a, list_to_pid("<0.2.1>") => b},
              #{erlang:list_to_ref("#Ref<0.1.2.3>") => a, erlang:list_to_ref("#Ref<0.3.2.1>") => b}],
    Ints ++ [-I || I <- Ints, I > 0] ++ Floats ++ [-F || F <- Floats, F > 0] ++ Atoms ++
        Strings ++ Bins ++ Compound ++ Opaque.

%% Random terms, Depth bounding nesting. Maps stay at 32 keys or fewer:
%% past that BEAM keeps them in hash order, which the printer does not
%% reproduce (it prints keys in term order).
random_term(0) -> random_leaf();
random_term(D) ->
    case rand:uniform(10) of
        N when N =< 5 -> random_leaf();
        6 -> [random_term(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)];
        7 -> list_to_tuple([random_term(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        8 -> maps:from_list([{random_term(D - 1), random_term(D - 1)}
                             || _ <- lists:seq(1, rand:uniform(6) - 1)]);
        9 -> case rand:uniform(3) of
                 1 -> [random_term(D - 1) | random_leaf()];
                 2 -> random_string();
                 3 -> [random_term(D - 1), random_term(D - 1) | random_string()]
             end;
        10 -> maps:from_list([{random_leaf(), random_term(D - 1)}
                              || _ <- lists:seq(1, rand:uniform(33) - 1)])
    end.

random_leaf() ->
    case rand:uniform(9) of
        1 -> rand:uniform(1000) - 500;
        2 -> random_big();
        3 -> random_float();
        4 -> random_atom();
        5 -> random_string();
        6 -> random_binary();
        7 -> []; 
        8 -> random_float();
        9 -> lists:nth(rand:uniform(4), [self(), make_ref(), hd(erlang:ports()), fun lists:map/2])
    end.

random_big() ->
    Bits = rand:uniform(300),
    V = rand:uniform(1 bsl Bits),
    case rand:uniform(2) of 1 -> V; 2 -> -V end.

random_float() ->
    case rand:uniform(3) of
        1 ->
            <<F:64/float>> = random_float_bits(),
            F;
        2 -> (rand:uniform() - 0.5) * math:pow(10, rand:uniform(40) - 20);
        3 -> float(rand:uniform(100000)) * math:pow(10, rand:uniform(30) - 15)
    end.

random_float_bits() ->
    B = <<_:1, E:11, _:52>> = crypto_bytes(8),
    case E of
        2047 -> random_float_bits();
        _ -> B
    end.

crypto_bytes(N) -> list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, N)]).

random_atom() ->
    case rand:uniform(4) of
        1 -> list_to_atom([$a + rand:uniform(26) - 1 | [random_name_char() || _ <- lists:seq(1, rand:uniform(8) - 1)]]);
        2 -> list_to_atom([random_char(255) || _ <- lists:seq(1, rand:uniform(6) - 1)]);
        3 -> list_to_atom([random_char(16#3000) || _ <- lists:seq(1, rand:uniform(4))]);
        4 -> lists:nth(rand:uniform(6), ['end', 'Q', 'a b', '', 'maybe', 'x@y'])
    end.

random_name_char() ->
    lists:nth(rand:uniform(66), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@ÀÿßÖ").

random_char(Max) ->
    case rand:uniform(Max) of
        C when C >= 16#D800, C =< 16#DFFF -> random_char(Max);
        C -> C
    end.

random_string() ->
    Len = rand:uniform(12) - 1,
    case rand:uniform(4) of
        1 -> [31 + rand:uniform(95) || _ <- lists:seq(1, Len)];
        2 -> [random_char(255) || _ <- lists:seq(1, Len)];
        3 -> [random_char(600) || _ <- lists:seq(1, Len)];
        4 -> [lists:nth(rand:uniform(8), "ab\n\t\"\\\e ") || _ <- lists:seq(1, Len)]
    end.

random_binary() ->
    case rand:uniform(4) of
        1 -> crypto_bytes(rand:uniform(10) - 1);
        2 -> list_to_binary(random_string_latin1());
        3 -> <<(crypto_bytes(rand:uniform(4) - 1))/binary, (rand:uniform(128) - 1):(rand:uniform(7))>>;
        4 -> unicode:characters_to_binary([random_char(600) || _ <- lists:seq(1, rand:uniform(5))])
    end.

random_string_latin1() ->
    [lists:nth(rand:uniform(10), "xyz \n\"\\é\x{a0}\e") || _ <- lists:seq(1, rand:uniform(8))].
