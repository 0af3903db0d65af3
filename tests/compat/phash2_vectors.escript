#!/usr/bin/env escript
%% SPDX-License-Identifier: Apache-2.0
%%
%% Prints the phash2 table of tests/unit/test_order.c: for each Erlang
%% expression below, its term_to_binary/1 bytes and erlang:phash2(T, 1 bsl 32)
%% (the full 32-bit make_hash2 value) as computed by the running BEAM.
%% Regenerate with: escript tests/compat/phash2_vectors.escript
-mode(compile).

exprs() ->
    ["0", "1", "-1", "42", "255", "256", "-255",
     "134217727", "134217728", "-134217728", "-134217729",
     "1 bsl 31", "(1 bsl 32) - 1", "1 bsl 32", "-(1 bsl 32)",
     "(1 bsl 59) - 1", "1 bsl 59", "-(1 bsl 59)", "(1 bsl 60) - 1", "1 bsl 60",
     "-(1 bsl 60)", "-(1 bsl 60) - 1", "(1 bsl 64) - 1", "1 bsl 64", "-(1 bsl 64)",
     "1 bsl 100", "-(1 bsl 100) + 12345", "(1 bsl 200) + 7", "1 bsl 1000",
     "0.0", "-0.0", "1.0", "-1.0", "0.5", "3.141592653589793", "1.0e300", "-2.5e-300",
     "4.9406564584124654e-324", "1.7976931348623157e308",
     "a", "ok", "'hello world'", "''", "'Ärger'", "'ünïcødé'", "'日本'", "true", "nonode@nohost",
     "[]", "{}", "<<>>", "#{}",
     "[1]", "[1,2]", "[1,2,3]", "[1,2,3,4]", "[1,2,3,4,5]", "\"hello world\"",
     "[255,0,255]", "[256]", "[-1]", "[a]", "[a|b]", "[1|2]", "[1,2|3]",
     "[[]]", "[[1],[2,3]]", "[1,300,2,3,4,5]", "[<<1>>, 1.0, x]", "lists:seq(1, 100)",
     "{a}", "{1,2}", "{a,b,c}", "{{}}", "{[], []}", "{ok, <<\"data\">>}", "{1.0, -1, 1 bsl 70}",
     "<<0>>", "<<1,2,3>>", "<<\"abcdefghijk\">>", "<<\"abcdefghijkl\">>",
     "<<\"abcdefghijklm\">>", "list_to_binary(lists:seq(0, 255))",
     "<<1:1>>", "<<5:3>>", "<<1,2,3:7>>", "<<255,255:4>>",
     "#{a => 1}", "#{1 => a}", "#{a => 1, b => 2}", "#{b => 2, a => 1}",
     "#{1 => 1.0, 1.0 => 1}", "#{[] => [], {} => {}}", "#{k => #{k => v}}",
     "maps:from_list([{I, I * I} || I <- lists:seq(1, 40)])",
     "{#{a => []}, [#{}]}",
     "fun lists:map/2", "fun erlang:phash2/2",
     "binary_to_term(<<131,88,100,0,13,\"nonode@nohost\",0,0,0,5,0,0,0,0,0,0,0,0>>)",
     "binary_to_term(<<131,88,100,0,3,\"a@b\",0,0,0,7,0,0,0,3,0,0,0,1>>)",
     "binary_to_term(<<131,88,100,0,3,\"a@b\",128,0,0,1,0,0,0,3,0,0,0,1>>)",
     "binary_to_term(<<131,120,100,0,3,\"a@b\",0,0,0,0,0,0,0,9,0,0,0,2>>)",
     "binary_to_term(<<131,120,100,0,3,\"a@b\",0,0,0,1,0,0,0,9,0,0,0,2>>)",
     "binary_to_term(<<131,90,0,3,100,0,3,\"a@b\",0,0,0,1,0,0,0,17,0,0,0,2,0,0,0,3>>)",
     "binary_to_term(<<131,90,0,3,100,0,13,\"nonode@nohost\",0,0,0,0,0,1,2,3,4,5,6,7,8,9,10,11>>)"
    ].

eval(S) ->
    {ok, Toks, _} = erl_scan:string(S ++ "."),
    {ok, [E]} = erl_parse:parse_exprs(Toks),
    {value, V, _} = erl_eval:expr(E, erl_eval:new_bindings()),
    V.

hex(B) -> lists:flatten([io_lib:format("~2.16.0b", [X]) || <<X>> <= B]).

%% The expression as a C string literal: UTF-8, octal escapes for bytes
%% outside ASCII (octal escapes end after three digits, unlike \x).
c_string(S) ->
    lists:flatten([case C of
                       $" -> "\\\"";
                       $\\ -> "\\\\";
                       _ when C >= 128 -> io_lib:format("\\~3.8.0b", [C]);
                       _ -> C
                   end || <<C>> <= unicode:characters_to_binary(S)]).

main(_) ->
    lists:foreach(
      fun(S) ->
              T = eval(S),
              io:format("        { \"~s\",~n          \"~s\",~n          ~wu },~n",
                        [c_string(S), hex(term_to_binary(T)), erlang:phash2(T, 1 bsl 32)])
      end, exprs()).
