"""The live view of running studies (`hpstudy serve`): a local web page of each study's progress, running trials,
trials table and figures, refreshed as its trial files change. Read only, no Keras: `watch` reads a results
folder (cached by the files' signatures), `page` is the page (everything inlined), `server` answers HTTP."""
