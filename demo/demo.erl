%% The README's demo: a real VM uses Debian's jiffy through nifkit, then a
%% NIF that segfaults, lives on, and calls that NIF again in a restarted host.
%% Run by scripts/demo.
-module(demo).
-export([main/0]).

main() ->
    io:format("~nnifkit demo: Erlang/OTP ~s, VM os pid ~s~n~n",
              [erlang:system_info(otp_release), os:getpid()]),
    Doc = <<"{\"tenant\": \"a\", \"values\": [1, 2.5, null, \"caf\\u00e9\"]}">>,
    step("jiffy:decode(~s, [return_maps])", [Doc],
         fun() -> jiffy:decode(Doc, [return_maps]) end),
    step("jiffy:encode(#{sandboxed => [true, 1.5]})", [],
         fun() -> jiffy:encode(#{sandboxed => [true, 1.5]}) end),
    io:format("    the NIF libraries run in sandboxed hosts, children of the VM:~n~s~n",
              [hosts()]),
    step("crashy:hello()", [], fun() -> crashy:hello() end),
    step("crashy:crash()   % writes through a NULL pointer", [],
         fun() -> crashy:crash() end),
    step("jiffy:decode(<<\"[\\\"still here\\\"]\">>)", [],
         fun() -> jiffy:decode(<<"[\"still here\"]">>) end),
    step("crashy:hello()   % the proxy restarted crashy's host", [],
         fun() -> crashy:hello() end),
    %% The state files are rewritten at most once a second.
    timer:sleep(1100),
    io:format("> nifkit status~n~s", [indent(os:cmd(os:getenv("NIFKIT") ++ " status"))]),
    step("[maps:with([library, calls, errors, restarts], S) || S <- nifkit:stats(), own(S)]", [],
         fun() -> [maps:with([library, calls, errors, restarts], S) || S <- nifkit:stats(),
                   own(S)] end),
    io:format("~nThe VM survived the segfault: ~p processes alive, uptime ~p ms.~n",
              [erlang:system_info(process_count),
               element(1, erlang:statistics(wall_clock))]),
    halt(0).

step(Fmt, Args, Fun) ->
    io:format("> " ++ Fmt ++ "~n", Args),
    try Fun() of
        Result -> io:format("    ~p~n", [Result])
    catch
        Class:Reason -> io:format("    caught ~p:~p~n", [Class, Reason])
    end.

indent(Text) ->
    ["    " ++ L ++ "\n" || L <- string:split(string:trim(Text, trailing), "\n", all)].

%% This VM's hosts only: other runtimes on the machine have their own.
own(#{runtime_pid := Pid}) -> integer_to_list(Pid) =:= os:getpid().

hosts() ->
    %% Each host: its pid, the user it runs as outside its user namespace,
    %% and its network namespace next to the VM's own.
    os:cmd("for p in $(pgrep -P " ++ os:getpid() ++ " nifkit-host); do "
           "echo \"      pid $p, user $(ps -o user= -p $p), "
           "net $(readlink /proc/$p/ns/net) (the VM: $(readlink /proc/self/ns/net))\"; done").
