%% @doc The NIF over libdevicegate (c_src/devicegate_nif.c). Every function
%% is replaced by its C implementation when the module loads; the Erlang
%% bodies only run if priv/devicegate_nif.so could not be loaded.
-module(devicegate_nif).

-export([start/1, stop/1, auth_on_register/8, auth_on_publish/6, auth_on_subscribe/4,
         on_register/3, client_left/4, poll_effect/1]).

-on_load(init/0).

init() ->
    Dir = case code:priv_dir(devicegate) of
              {error, bad_name} ->
                  filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
              Priv -> Priv
          end,
    erlang:load_nif(filename:join(Dir, "devicegate_nif"), 0).

start(_ConfigJson) -> erlang:nif_error(nif_not_loaded).
stop(_Engine) -> erlang:nif_error(nif_not_loaded).
auth_on_register(_Engine, _PeerIp, _PeerPort, _Mountpoint, _ClientId, _UserName, _Password, _CleanSession) ->
    erlang:nif_error(nif_not_loaded).
auth_on_publish(_Engine, _Mountpoint, _ClientId, _Topic, _Payload, _Retain) -> erlang:nif_error(nif_not_loaded).
auth_on_subscribe(_Engine, _Mountpoint, _ClientId, _Topics) -> erlang:nif_error(nif_not_loaded).
on_register(_Engine, _Mountpoint, _ClientId) -> erlang:nif_error(nif_not_loaded).
client_left(_Engine, _Mountpoint, _ClientId, _How) -> erlang:nif_error(nif_not_loaded).
poll_effect(_Engine) -> erlang:nif_error(nif_not_loaded).
