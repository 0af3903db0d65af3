%% A module that loads its NIF the ordinary way: nothing here knows nifkit.
-module(crashy).
-export([hello/0, crash/0]).
-on_load(init/0).

init() ->
    Priv = filename:join(filename:dirname(code:which(?MODULE)), "../priv"),
    erlang:load_nif(filename:join(Priv, "crashy"), 0).

hello() -> erlang:nif_error(not_loaded).
crash() -> erlang:nif_error(not_loaded).
