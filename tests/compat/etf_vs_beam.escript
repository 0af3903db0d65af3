#!/usr/bin/env escript
%% SPDX-License-Identifier: Apache-2.0
%%
%% etf_vs_beam.escript ROUNDTRIP [SEED]
%%
%% BEAM makes a few hundred terms (edge cases and random nests of every
%% type), writes term_to_binary/1 of each to a file, and has the host's codec
%% (the ROUNDTRIP program, etf_roundtrip.c) decode and re-encode them. The
%% test fails if any record comes back with other bytes than BEAM's own, or
%% if binary_to_term/1 of what came back is not =:= to the original. Maps of
%% more than 32 keys are included: BEAM sends them in hash order, and the
%% host must keep that order to give the same bytes.
-mode(compile).

main([Roundtrip]) ->
    main([Roundtrip, integer_to_list(erlang:unique_integer([positive]) rem 100000)]);
main([Roundtrip, SeedStr]) ->
    Seed = list_to_integer(SeedStr),
    io:format("seed ~p (rerun: etf_vs_beam.escript ROUNDTRIP ~p)~n", [Seed, Seed]),
    rand:seed(exsss, {Seed, Seed * 7 + 1, Seed * 13 + 2}),
    Terms = edge_cases() ++ [gen(4) || _ <- lists:seq(1, 400)],
    Dir = make_tmpdir(),
    In = filename:join(Dir, "in.etf"),
    Out = filename:join(Dir, "out.etf"),
    Bins = [term_to_binary(T) || T <- Terms],
    ok = file:write_file(In, [[<<(byte_size(B)):32>>, B] || B <- Bins]),
    {Status, Output} = run(Roundtrip, [In, Out]),
    io:format("~s", [Output]),
    {ok, OutData} = file:read_file(Out),
    Back = records(OutData),
    Bad = check(Terms, Bins, Back, 0, []),
    _ = file:del_dir_r(Dir),
    case {Status, Bad, length(Back) =:= length(Terms)} of
        {0, [], true} ->
            io:format("~p terms: same bytes as BEAM, same terms back~n", [length(Terms)]),
            halt(0);
        _ ->
            [io:format("term ~p: ~s~n  ~P~n", [I, Why, T, 12]) || {I, Why, T} <- lists:reverse(Bad)],
            io:format("FAILED: exit status ~p, ~p bad terms~n", [Status, length(Bad)]),
            halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: etf_vs_beam.escript ROUNDTRIP [SEED]~n", []),
    halt(2).

check([], [], [], _, Bad) -> Bad;
check([T | Ts], [B | Bs], [R | Rs], I, Bad) ->
    Why = if
              R =:= <<>> -> "not decoded or not encoded";
              R =/= B -> "bytes differ";
              true ->
                  case catch binary_to_term(R) of
                      T2 when T2 =:= T -> ok;
                      _ -> "binary_to_term of the result is not =:= the original"
                  end
          end,
    check(Ts, Bs, Rs, I + 1, case Why of ok -> Bad; _ -> [{I, Why, T} | Bad] end);
check(Ts, _, _, I, Bad) ->
    [{I, "missing from the output", hd(Ts ++ [none])} | Bad].

records(<<N:32, B:N/binary, Rest/binary>>) -> [B | records(Rest)];
records(<<>>) -> [].

run(Prog, Args) ->
    Port = open_port({spawn_executable, Prog},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [Acc, D]);
        {Port, {exit_status, S}} -> {S, Acc}
    after 120000 -> {timeout, Acc}
    end.

make_tmpdir() ->
    Base = case os:getenv("TMPDIR") of false -> "/tmp"; T -> T end,
    Dir = filename:join(Base, "etf_vs_beam." ++ os:getpid()),
    ok = filelib:ensure_path(Dir),
    Dir.

%% --- terms ---------------------------------------------------------------

edge_cases() ->
    Ints = [0, 1, 255, 256, -1, -256, 2147483647, 2147483648, -2147483648, -2147483649,
            (1 bsl 59) - 1, 1 bsl 59, 1 bsl 60, -(1 bsl 60), -(1 bsl 60) - 1,
            (1 bsl 63) - 1, 1 bsl 63, 1 bsl 64, -(1 bsl 64), 1 bsl 2039, 1 bsl 2040,
            -(1 bsl 2041), 1 bsl 10000],
    Floats = [0.0, -0.0, 1.0, -1.5, 5.0e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, 3.141592653589793, 1.0e100],
    Atoms = [a, '', true, 'hello world', list_to_atom([$h, 16#f6]),
             list_to_atom([16#65e5, 16#672c]), list_to_atom([16#1F600]),
             list_to_atom(lists:duplicate(255, $x)),
             list_to_atom(lists:duplicate(255, 16#e9)),
             list_to_atom(lists:duplicate(255, 16#65e5))],
    Bins = [<<>>, <<0>>, list_to_binary(lists:seq(0, 255)), <<1:1>>, <<255, 3:3>>,
            <<1, 2, 3, 4, 5, 6, 7:7>>, binary:part(<<"abcdefgh">>, 2, 3),
            binary:copy(<<"x">>, 70000)],
    Lists = [[], "abc", [256], [0 | 1], [a | b], lists:duplicate(65535, $s),
             lists:duplicate(65536, $s), lists:seq(1, 300), "héllo", [1.0, 2, three],
             [[[[[[[[[[[]]]]]]]]]]]],
    Tuples = [{}, {a}, list_to_tuple(lists:seq(1, 255)), list_to_tuple(lists:seq(1, 256)),
              {{{{{}}}}}],
    Maps = [#{}, #{a => 1}, #{1 => a, 1.0 => b, <<"k">> => c, [] => d, {} => e},
            maps:from_list([{I, I * I} || I <- lists:seq(1, 32)]),
            maps:from_list([{I, I * I} || I <- lists:seq(1, 33)]),
            maps:from_list([{integer_to_binary(I), I} || I <- lists:seq(1, 200)]),
            maps:from_list([{list_to_atom("k" ++ integer_to_list(I)), #{I => [I]}}
                            || I <- lists:seq(1, 100)]),
            #{big => maps:from_list([{{I, x}, I} || I <- lists:seq(1, 40)])}],
    Ids = [self(), make_ref(), hd(erlang:ports()), fun lists:map/2, fun erlang:abs/1,
           fun(X) -> X end, closure(42), closure({a, [b], <<"c">>}),
           list_to_pid("<0.32767.8191>"), list_to_ref("#Ref<0.1.2.3>"),
           remote_pid(), remote_port(28), remote_port(40), remote_ref(), remote_ref3()],
    Ints ++ [-I || I <- Ints, I > 0] ++ Floats ++ Atoms ++ Bins ++ Lists ++ Tuples ++ Maps ++ Ids.

closure(V) -> fun(X) -> {X, V} end.

node_atom_ext(Name) ->
    B = atom_to_binary(Name, utf8),
    <<119, (byte_size(B)), B/binary>>.

remote_pid() ->
    binary_to_term(<<131, 88, (node_atom_ext('other@host'))/binary, 12345:32, 6:32,
                     16#a1b2c3d4:32>>).

remote_port(Bits) ->
    binary_to_term(<<131, 120, (node_atom_ext('other@host'))/binary,
                     ((1 bsl Bits) + 5):64, 77:32>>).

remote_ref() ->
    binary_to_term(<<131, 90, 0, 5, (node_atom_ext('other@host'))/binary, 99:32,
                     1:32, 2:32, 3:32, 4:32, 5:32>>).

remote_ref3() ->
    binary_to_term(<<131, 90, 0, 3, (node_atom_ext('other@host'))/binary, 7:32,
                     10:32, 20:32, 30:32>>).

gen(D) when D =< 0 -> leaf();
gen(D) ->
    case rand:uniform(10) of
        1 -> list_to_tuple([gen(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        2 -> [gen(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)];
        3 -> [gen(D - 1) | leaf()];
        4 -> maps:from_list([{gen(D - 1), gen(D - 1)} || _ <- lists:seq(1, rand:uniform(6) - 1)]);
        5 -> maps:from_list([{leaf(), gen(D - 2)} || _ <- lists:seq(1, 30 + rand:uniform(40))]);
        _ -> leaf()
    end.

leaf() ->
    case rand:uniform(14) of
        1 -> rand:uniform(256) - 1;
        2 -> rand:uniform(1 bsl 32) - (1 bsl 31);
        3 -> rand:uniform(1 bsl 64) - (1 bsl 63);
        4 -> (rand:uniform(2) * 2 - 3) * rand:uniform(1 bsl (64 + rand:uniform(3000)));
        5 -> (rand:uniform() - 0.5) * math:pow(10, rand:uniform(600) - 300);
        6 -> list_to_atom([rand:uniform(255) || _ <- lists:seq(1, rand:uniform(20))]);
        7 -> list_to_atom([16#4e00 + rand:uniform(500) || _ <- lists:seq(1, rand:uniform(20))]);
        8 -> rand:bytes(rand:uniform(300) - 1);
        9 -> N = rand:uniform(64), <<(rand:uniform(1 bsl N) - 1):N>>;
        10 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(50))];
        11 -> [rand:uniform(16#10ffff) || _ <- lists:seq(1, rand:uniform(10))];
        12 -> list_to_pid("<0." ++ integer_to_list(rand:uniform(32767)) ++ "." ++
                          integer_to_list(rand:uniform(8191)) ++ ">");
        13 -> make_ref();
        14 -> closure(rand:uniform(1000))
    end.
