%% SPDX-License-Identifier: Apache-2.0
%% @doc The event relay. Every wrapped library's proxy sends its host
%% events, as `{nifkit, Event, Info}', to the process registered as
%% nifkit_events; this process sends each on to the processes that called
%% nifkit:subscribe/0, and forgets a subscriber that exits. Without it
%% (the application not started) the proxies send nothing.
-module(nifkit_events).
-behaviour(gen_server).
-export([start_link/0, subscribe/1, unsubscribe/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

subscribe(Pid) ->
    gen_server:call(?MODULE, {subscribe, Pid}).

unsubscribe(Pid) ->
    gen_server:call(?MODULE, {unsubscribe, Pid}).

%% Subscribers: pid => monitor reference.
init([]) ->
    {ok, #{}}.

handle_call({subscribe, Pid}, _From, Subs) when is_map_key(Pid, Subs) ->
    {reply, ok, Subs};
handle_call({subscribe, Pid}, _From, Subs) ->
    {reply, ok, Subs#{Pid => erlang:monitor(process, Pid)}};
handle_call({unsubscribe, Pid}, _From, Subs) ->
    case maps:take(Pid, Subs) of
        {Ref, Rest} ->
            erlang:demonitor(Ref, [flush]),
            {reply, ok, Rest};
        error ->
            {reply, ok, Subs}
    end;
handle_call(_Other, _From, Subs) ->
    {reply, {error, unknown_request}, Subs}.

handle_cast(_Other, Subs) ->
    {noreply, Subs}.

handle_info({nifkit, Event, Info} = Msg, Subs) when is_atom(Event), is_map(Info) ->
    _ = [Pid ! Msg || Pid <- maps:keys(Subs)],
    {noreply, Subs};
handle_info({'DOWN', _Ref, process, Pid, _Why}, Subs) ->
    {noreply, maps:remove(Pid, Subs)};
handle_info(_Other, Subs) ->
    {noreply, Subs}.
