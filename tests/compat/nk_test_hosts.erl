%% SPDX-License-Identifier: Apache-2.0
%%
%% The nifkit hosts of this VM, for the compat and proxy tests: started by
%% the VM's host template (nifkit-template, a child of the VM), or by the VM
%% itself with NIFKIT_TEMPLATE=off.
-module(nk_test_hosts).
-export([hosts/0]).

%% Their OS process ids, as strings.
hosts() ->
    Me = os:getpid(),
    Rows = [string:lexemes(L, " ") || L <- string:split(os:cmd("ps -e -o pid=,ppid=,comm="), "\n", all)],
    Parents = [Me | [P || [P, PP, "nifkit-template"] <- Rows, PP =:= Me]],
    [P || [P, PP, "nifkit-host"] <- Rows, lists:member(PP, Parents)].
